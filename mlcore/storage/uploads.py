"""Multipart uploads streamed straight into the encrypted store."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers

from .objects import (
    CHUNK_SIZE,
    EncryptedReader,
    EncryptedWriter,
    StoredObject,
    clean_kind,
    clean_object_id,
    delete_object,
    open_object,
)

logger = logging.getLogger(__name__)


class UploadRefused(Exception):
    """The handler itself refused the upload (a second file in its field); the partial objects
    are removed. It knows nothing of HTTP: the caller (or its `on_refused`) decides what to answer.
    Refusals of the on_progress hook (quota, size, role) are the hook's own exceptions and
    propagate unchanged."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EncryptedUploadedFile(UploadedFile):
    """request.FILES["file"] after EncryptingUploadHandler: already stored, encrypted.

    `.stored` is the StoredObject (object_id, key_version, plaintext_bytes, sha256_hex); `.name`,
    `.content_type` and `.size` are those of the upload; `open()` returns a new decrypting reader.

    With delete_unless_kept (see install_encrypting_upload), call `keep()` once the object is
    recorded (the dataset row saved): Django closes uploaded files when the request ends, and an
    upload not kept by then is deleted, so a request refused after its body was parsed (CSRF, role,
    validation, a crash) leaves no orphan file. Without it, `discard()` is the caller's job.

    `.tee` is what the handler's `tee` hook returned for this file (None without one): it has
    had every plaintext byte and its end; it is closed when the file is closed or discarded.
    """

    def __init__(self, *, tenant, stored: StoredObject, name: str, content_type: str,
                 charset: str | None, content_type_extra: dict | None,
                 delete_unless_kept: bool = False, tee: Tee | None = None):
        super().__init__(file=None, name=name, content_type=content_type,
                         size=stored.plaintext_bytes, charset=charset,
                         content_type_extra=content_type_extra)
        self.stored = stored
        self.tee = tee
        self._tenant = tenant
        self._kept = not delete_unless_kept
        self._discarded = False

    @property
    def object_id(self) -> str:
        return self.stored.object_id

    def open(self, mode=None) -> EncryptedReader:
        return open_object(self._tenant, self.stored.kind, self.stored.object_id)

    def read(self, *args):
        raise io.UnsupportedOperation("use open() for a decrypting reader of the stored upload")

    def chunks(self, chunk_size=None):
        with self.open() as reader:
            while block := reader.read(chunk_size or CHUNK_SIZE):
                yield block

    def keep(self) -> None:
        self._kept = True

    def close(self) -> None:
        if self.tee is not None:
            self.tee.close()
        if not self._kept:
            self.discard()

    def discard(self) -> None:
        if self.tee is not None:
            self.tee.close()
        if not self._discarded:
            delete_object(self._tenant, self.stored.kind, self.stored.object_id)
            self._discarded = True


class Tee(Protocol):
    """Gets a copy of a file's plaintext as it arrives (see EncryptingUploadHandler)."""

    def write(self, data: bytes) -> object: ...

    def end(self) -> None: ...

    def close(self) -> None: ...


ProgressHook = Callable[[int], None]
RefusalHook = Callable[[UploadRefused], BaseException]
TeeHook = Callable[[str], Tee | None]


class DiscardUnencryptedUploads(FileUploadHandler):
    """The default upload handler (settings.FILE_UPLOAD_HANDLERS): a view that did not install the
    encrypting handler gets no file at all, never a plaintext temporary file."""

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        logger.warning("file upload dropped: the view has no encrypting upload handler",
                       extra={"field": field_name, "path": getattr(self.request, "path", "")})
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        return None

    def file_complete(self, file_size):
        return None


class EncryptingUploadHandler(FileUploadHandler):
    """Streams the file of one multipart field straight into an EncryptedWriter.

    No temporary plaintext file and never the whole file in memory. `on_progress(total_bytes)` is
    called with 0 before anything is written, then after each received chunk with the plaintext
    bytes so far; whatever it raises removes the partial object and propagates out of
    request.POST / request.FILES / request.data. The handler's own refusal (a second file in the
    field) is UploadRefused, or what `on_refused(refusal)` returns instead. Other file fields are
    dropped unread. Install it with install_encrypting_upload().

    `tee(file_name)`, when given, is called once the file is allowed to start and returns a Tee
    (or None): it then gets each chunk of plaintext once it is stored and counted (`write`, which
    may hold the upload back while it catches up), `end()` when the file is complete, and
    `close()` if the file does not complete; the uploaded file carries it on as `.tee`.
    """

    chunk_size = 256 * 1024

    def __init__(self, request, *, tenant=None, kind: str = "datasets", field: str = "file",
                 object_id=None, on_progress: ProgressHook | None = None,
                 on_refused: RefusalHook | None = None, delete_unless_kept: bool = False,
                 tee: TeeHook | None = None):
        super().__init__(request)
        self.tenant = tenant if tenant is not None else request.tenant
        self.kind = clean_kind(kind)
        self.field = field
        self.object_id = clean_object_id(object_id) if object_id is not None else None
        self.on_progress = on_progress
        self.on_refused = on_refused
        self.delete_unless_kept = delete_unless_kept
        self.tee_hook = tee
        self.writer: EncryptedWriter | None = None
        self.tee: Tee | None = None
        self.uploaded: list[EncryptedUploadedFile] = []
        self._seen = False

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset,
                         content_type_extra)
        self.writer = None
        if field_name == self.field:
            if self._seen:
                self.discard()  # the first file is already stored: it must not outlive the refusal
                refusal = UploadRefused(f"Send a single file in the '{self.field}' field.")
                raise self.on_refused(refusal) if self.on_refused is not None else refusal
            self._seen = True
            self._report(0)
            self.writer = EncryptedWriter(self.tenant, self.kind, self.object_id or uuid.uuid4(),
                                          background=True)
            if self.tee_hook is not None:
                try:
                    self.tee = self.tee_hook(self.file_name)
                except BaseException:
                    self._abort()
                    raise
        # No handler after this one sees any file: it could spill plaintext to a temporary file.
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.writer is None:
            return None  # another file field: dropped
        try:
            self.writer.write(raw_data)
            self._report(self.writer.tell())
            if self.tee is not None:
                self.tee.write(raw_data)
        except BaseException:
            self._abort()
            raise
        return None

    def file_complete(self, file_size):
        if self.writer is None:
            return None
        writer, self.writer = self.writer, None
        tee, self.tee = self.tee, None
        try:
            if tee is not None:
                tee.end()  # the tee finishes its work while the file is synced to disk
            stored = writer.commit()
        except BaseException:
            writer.abort()
            if tee is not None:
                tee.close()
            raise
        uploaded = EncryptedUploadedFile(
            tenant=self.tenant, stored=stored, name=self.file_name, content_type=self.content_type,
            charset=self.charset, content_type_extra=self.content_type_extra,
            delete_unless_kept=self.delete_unless_kept, tee=tee,
        )
        self.uploaded.append(uploaded)
        return uploaded

    def upload_interrupted(self):
        self._abort()  # the body ended in the middle of the file

    def upload_complete(self):
        self._abort()  # a file that was never completed leaves nothing behind

    def close(self) -> None:
        """Remove the partial object (and close the tee) of a file still open: the body broke
        off mid-file, which Django reports to neither upload_interrupted nor upload_complete."""
        self._abort()

    def discard(self) -> None:
        """Delete every object this handler committed (the view refused the upload after all)."""
        for uploaded in self.uploaded:
            uploaded.discard()

    def _report(self, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(total)

    def _abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.tee is not None:
            self.tee.close()
            self.tee = None


def install_encrypting_upload(request, *, kind: str = "datasets", field: str = "file",
                              object_id=None, on_progress: ProgressHook | None = None,
                              on_refused: RefusalHook | None = None, tenant=None,
                              delete_unless_kept: bool = True,
                              tee: TeeHook | None = None) -> EncryptingUploadHandler:
    """Make `request` store its uploaded file encrypted; call before anything reads the body.

    The body is parsed by the first access to request.POST, request.FILES or (DRF) request.data.
    With DRF, a session request is parsed by the CSRF check inside authentication, i.e. before the
    permission classes run, so install the handler in `initial()` before `super().initial()`, and
    let on_progress refuse what the role or the quota forbids (it runs once with 0 before anything
    is written; the middleware has already checked membership)::

        class DatasetUploadApi(TenantAPI):
            def initial(self, request, *args, **kwargs):
                self.upload = install_encrypting_upload(request, kind="datasets",
                                                        on_progress=self.check_upload_allowed)
                super().initial(request, *args, **kwargs)

            def post(self, request):
                uploaded = request.data.get("file")   # EncryptedUploadedFile: .stored, .name
                dataset = dataset_create(..., stored=uploaded.stored)
                uploaded.keep()   # else deleted when the request ends (refusals, errors, CSRF)
                ...

    delete_unless_kept=False leaves cleaning up to the caller (`uploaded.discard()`,
    `handler.discard()`, or delete_object). A plain Django view must be csrf_exempt (CsrfViewMiddleware reads request.POST before the view
    runs) and check the token itself with csrf_protect on an inner function.
    """
    django_request = getattr(request, "_request", request)  # a DRF Request wraps the HttpRequest
    handler = EncryptingUploadHandler(django_request, tenant=tenant, kind=kind, field=field,
                                      object_id=object_id, on_progress=on_progress,
                                      on_refused=on_refused, delete_unless_kept=delete_unless_kept,
                                      tee=tee)
    try:
        django_request.upload_handlers = [handler]
    except AttributeError:
        raise RuntimeError("The request body was already parsed (request.POST, FILES or data was "
                           "read): install the encrypting upload handler before that.")
    return handler
