"""HTML pages of the public site and of every tenant host, one module per area.

public (landing), accounts (sign in and out, passwords), security (two-factor, security settings),
members, tokens, usage (usage, member limits, operators' usage), audit (audit trail, operators'
chains), docs (Swagger UI), errors (404/403/500 handlers).
"""
