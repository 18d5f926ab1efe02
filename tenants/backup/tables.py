"""The rows of a tenant schema, out to COPY text and back, whatever tables the tenant apps define.

Tables and columns come from the catalog, so a new tenant model is backed up without a change
here. Columns that point into the public schema (the people who own datasets and jobs, guardian's
permissions) hold this installation's ids; they are listed in the archive with what identifies
their targets elsewhere (an e-mail, an app label and codename) and remapped on restore.
"""

from __future__ import annotations

from django.db import connection

# Public tables a tenant schema may point at, and how their rows are matched in another installation.
USER_TABLE = "tenants_user"
PUBLIC_TARGETS = (USER_TABLE, "auth_permission", "django_content_type", "auth_group")


def quoted(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'


def table_columns(schema: str) -> dict[str, list[str]]:
    """{table: [columns in order]} of the schema's ordinary tables, migrations included."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname, a.attnum", [schema])
        tables: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            tables.setdefault(table, []).append(column)
    return tables


def public_references(schema: str) -> list[tuple[str, str, str]]:
    """(table, column, public table) for every foreign key of the schema into the public schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cl.relname, a.attname, target.relname FROM pg_constraint con "
            "JOIN pg_class cl ON cl.oid = con.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace "
            "JOIN pg_class target ON target.oid = con.confrelid "
            "JOIN pg_namespace tn ON tn.oid = target.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1] "
            "WHERE con.contype = 'f' AND n.nspname = %s AND tn.nspname = 'public' "
            "ORDER BY cl.relname, a.attname", [schema])
        return [tuple(row) for row in cursor.fetchall()]


def referenced_ids(schema: str, references: list[tuple[str, str, str]]) -> dict[str, set[int]]:
    """{public table: ids the schema's rows point at}."""
    found: dict[str, set[int]] = {}
    with connection.cursor() as cursor:
        for table, column, target in references:
            cursor.execute(f'SELECT DISTINCT "{column}" FROM {quoted(schema, table)} '  # noqa: S608
                           f'WHERE "{column}" IS NOT NULL')
            found.setdefault(target, set()).update(row[0] for row in cursor.fetchall())
    return found


def copy_out(schema: str, table: str, columns: list[str], sink) -> None:
    """The table's rows in COPY text format, ordered by its first column, written to `sink`."""
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'COPY (SELECT {cols} FROM {quoted(schema, table)} ORDER BY 1) TO STDOUT'  # noqa: S608
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for block in copy:
            sink.write(block)


def copy_in(schema: str, table: str, columns: list[str], source) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {quoted(schema, table)} ({cols}) FROM STDIN") as copy:
            while block := source.read(1024 * 1024):
                copy.write(block)


def truncate_all(schema: str, tables: list[str]) -> None:
    if not tables:
        return
    names = ", ".join(quoted(schema, t) for t in tables)
    with connection.cursor() as cursor:
        # CONTINUE IDENTITY: ids handed out after the backup are never handed out again (processes
        # cache loaded models by (schema, version id)).
        cursor.execute(f"TRUNCATE {names} CONTINUE IDENTITY CASCADE")


def remap(schema: str, references: list[tuple[str, str, str]], target: str, mapping: dict[int, int]) -> None:
    """Point every column that references `target` at the ids of this installation, in one UPDATE
    per column (each row read with its archived value, so chains like 5->7, 7->9 cannot mix)."""
    changed = {old: new for old, new in mapping.items() if old != new}
    if not changed:
        return
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS _restore_map (old bigint PRIMARY KEY, new bigint) "
                       "ON COMMIT DROP")
        cursor.execute("DELETE FROM _restore_map")
        cursor.executemany("INSERT INTO _restore_map (old, new) VALUES (%s, %s)", list(changed.items()))
        for table, column, points_at in references:
            if points_at != target:
                continue
            cursor.execute(f'UPDATE {quoted(schema, table)} AS t SET "{column}" = m.new '  # noqa: S608
                           f'FROM _restore_map m WHERE t."{column}" = m.old')


def reset_sequences(schema: str, tables: list[str]) -> None:
    """Identity and serial columns of a new schema continue after the restored ids."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT a.attname, pg_get_serial_sequence(%s, a.attname) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                [quoted(schema, table), quoted(schema, table)])
            for column, sequence in cursor.fetchall():
                if not sequence:
                    continue
                cursor.execute(f'SELECT setval(%s, coalesce((SELECT max("{column}") FROM '  # noqa: S608
                               f'{quoted(schema, table)}), 0) + 1, false)', [sequence])
