"""Multipart uploads stream straight into encrypted objects: no plaintext on disk, refusals clean up."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from mlcore import storage
from tests.mlcore.storage_support import empty_storage, every_file  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("empty_storage")

CANARY = b"CANARY-51c0ffee-never-on-disk"


def csv_bytes(rows: int, extra: bytes = b"") -> bytes:
    return b"id,amount,note\n" + b"".join(b"%d,%d.5,row %d %s\n" % (i, i, i, extra)
                                          for i in range(rows))


def upload_request(tenant, content: bytes, *, filename: str = "sales.csv", **fields):
    files = {"file": SimpleUploadedFile(filename, content, content_type="text/csv")}
    request = RequestFactory().post("/api/v1/datasets/", data={**fields, **files})
    request.tenant = tenant
    return request


@pytest.fixture
def no_temp_files(settings, tmp_path):
    """Where Django's default handlers would spill uploads: it must stay empty."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    yield tmp_path
    assert list(tmp_path.iterdir()) == []


def test_an_upload_streams_into_an_encrypted_object(acme, no_temp_files):
    content = csv_bytes(60_000)  # ~1.5 MB: several chunks of the parser and of the cipher
    request = upload_request(acme, content, name="Sales")
    progress = []
    storage.install_encrypting_upload(request, on_progress=progress.append)

    uploaded = request.FILES["file"]

    assert isinstance(uploaded, storage.EncryptedUploadedFile)
    assert (uploaded.name, uploaded.content_type, uploaded.size) == ("sales.csv", "text/csv", len(content))
    assert uploaded.stored.sha256_hex == hashlib.sha256(content).hexdigest()
    assert request.POST["name"] == "Sales"
    with uploaded.open() as reader:
        assert reader.read() == content
    assert progress[0] == 0 and progress[-1] == len(content)
    assert progress == sorted(progress) and len(progress) > 3
    assert every_file() == [storage.object_path(acme, "datasets", uploaded.object_id)]


def test_a_canary_in_an_uploaded_csv_is_nowhere_in_the_storage_folder(acme, no_temp_files):
    content = csv_bytes(40_000, extra=CANARY)
    request = upload_request(acme, content)
    storage.install_encrypting_upload(request)
    uploaded = request.FILES["file"]
    uploaded.keep()

    files = every_file()
    assert files, "the upload was stored"
    for path in files:
        stored = path.read_bytes()
        assert CANARY not in stored
        assert CANARY[:12] not in stored
    with uploaded.open() as reader:
        assert CANARY in reader.read()


class OverQuota(Exception):
    """What a caller's on_progress hook raises: storage lets it through unchanged."""


def test_a_refusal_while_streaming_removes_the_partial_object(acme, no_temp_files):
    def quota(total: int) -> None:
        if total > 300_000:
            raise OverQuota("The upload exceeds your storage quota.")

    request = upload_request(acme, csv_bytes(80_000))
    storage.install_encrypting_upload(request, on_progress=quota)

    with pytest.raises(OverQuota) as refused:
        request.FILES  # noqa: B018 - reading it parses the body

    assert str(refused.value) == "The upload exceeds your storage quota."
    assert every_file() == []


def test_a_refusal_before_the_first_byte_writes_nothing(acme, no_temp_files):
    def viewers_may_not_upload(total: int) -> None:
        raise OverQuota("Your role (viewer) does not allow this.")

    request = upload_request(acme, csv_bytes(1000))
    storage.install_encrypting_upload(request, on_progress=viewers_may_not_upload)

    with pytest.raises(OverQuota, match="viewer"):
        request.POST  # noqa: B018
    assert every_file() == []


def test_other_file_fields_are_dropped_unread(acme, no_temp_files):
    request = RequestFactory().post("/api/v1/datasets/", data={
        "file": SimpleUploadedFile("a.csv", csv_bytes(10)),
        "other": SimpleUploadedFile("b.csv", CANARY * 1000),
    })
    request.tenant = acme
    storage.install_encrypting_upload(request)

    assert list(request.FILES) == ["file"]
    assert len(every_file()) == 1


def test_a_second_file_in_the_file_field_is_refused_and_nothing_stays(acme, no_temp_files):
    request = RequestFactory().post("/api/v1/datasets/", data={
        "file": [SimpleUploadedFile("a.csv", csv_bytes(10)), SimpleUploadedFile("b.csv", csv_bytes(10))],
    })
    request.tenant = acme
    storage.install_encrypting_upload(request)

    with pytest.raises(storage.UploadRefused, match="single file") as refused:
        request.FILES  # noqa: B018
    assert refused.value.message == "Send a single file in the 'file' field."
    assert not hasattr(refused.value, "status_code")  # storage knows nothing of HTTP
    assert every_file() == []


def test_the_caller_chooses_the_exception_for_the_handlers_own_refusal(acme, no_temp_files):
    request = RequestFactory().post("/api/v1/datasets/", data={
        "file": [SimpleUploadedFile("a.csv", csv_bytes(10)), SimpleUploadedFile("b.csv", csv_bytes(10))],
    })
    request.tenant = acme
    storage.install_encrypting_upload(request, on_refused=lambda refusal: OverQuota(refusal.message))

    with pytest.raises(OverQuota, match="single file"):
        request.FILES  # noqa: B018
    assert every_file() == []


def test_an_upload_that_is_not_kept_is_deleted_when_the_request_ends(acme):
    request = upload_request(acme, csv_bytes(100))
    storage.install_encrypting_upload(request)
    request.FILES["file"]  # noqa: B018
    assert len(every_file()) == 1

    request.close()  # what Django does once the response is sent

    assert every_file() == []


def test_a_kept_upload_survives_the_end_of_the_request(acme):
    request = upload_request(acme, csv_bytes(100))
    storage.install_encrypting_upload(request)
    uploaded = request.FILES["file"]
    uploaded.keep()

    request.close()

    assert every_file() == [storage.object_path(acme, "datasets", uploaded.object_id)]


def test_without_the_encrypting_handler_files_are_dropped_not_spilled_to_disk(acme, no_temp_files):
    request = upload_request(acme, csv_bytes(50_000, extra=CANARY), name="Sales")

    assert request.POST["name"] == "Sales"
    assert list(request.FILES) == []
    assert every_file() == []


class Recorder:
    """A tee that keeps what it is given, and whether the file ended or was closed."""

    def __init__(self, file_name: str, stored_bytes) -> None:
        self.file_name, self.stored_bytes = file_name, stored_bytes
        self.chunks: list[bytes] = []
        self.stored_when_written: list[int] = []
        self.ended = self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.stored_when_written.append(self.stored_bytes())

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        self.closed = True


def install_with_recorder(request, **options) -> list[Recorder]:
    tees: list[Recorder] = []
    progress = [0]

    def counted(total: int) -> None:
        progress[0] = total
        if "on_progress" in options:
            options["on_progress"](total)

    def tee(file_name: str) -> Recorder:
        tees.append(Recorder(file_name, lambda: progress[0]))
        return tees[-1]

    storage.install_encrypting_upload(request, **{**options, "on_progress": counted}, tee=tee)
    return tees


def test_a_tee_gets_each_chunk_once_it_is_stored_then_the_end(acme, no_temp_files):
    content = csv_bytes(60_000)
    request = upload_request(acme, content)
    tees = install_with_recorder(request)

    uploaded = request.FILES["file"]

    [tee] = tees
    assert tee.file_name == "sales.csv"
    assert b"".join(tee.chunks) == content and len(tee.chunks) > 3
    sizes = [len(chunk) for chunk in tee.chunks]
    assert tee.stored_when_written == [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert tee.ended and not tee.closed
    assert uploaded.tee is tee
    request.close()
    assert tee.closed


def test_a_tee_is_closed_when_the_upload_is_refused_while_streaming(acme, no_temp_files):
    def quota(total: int) -> None:
        if total > 300_000:
            raise OverQuota("The upload exceeds your storage quota.")

    request = upload_request(acme, csv_bytes(80_000))
    tees = install_with_recorder(request, on_progress=quota)

    with pytest.raises(OverQuota):
        request.FILES  # noqa: B018

    [tee] = tees
    assert tee.closed and not tee.ended
    assert sum(len(chunk) for chunk in tee.chunks) <= 300_000  # the refused chunk never reached it
    assert every_file() == []


def test_a_body_that_breaks_off_mid_file_closes_the_tee_and_removes_the_part(acme, no_temp_files):
    whole = upload_request(acme, csv_bytes(80_000))
    body = BreaksOff(whole.environ["wsgi.input"].read(), after=600_000)
    request = WSGIRequest({**whole.environ, "wsgi.input": body})
    request.tenant = acme
    handler_tees = install_with_recorder(request)
    handler = request.upload_handlers[0]

    with pytest.raises(OSError, match="connection reset"):
        request.FILES  # noqa: B018
    handler.close()  # what the upload session does when the request ends

    [tee] = handler_tees
    assert tee.closed and not tee.ended
    assert every_file() == []


class BreaksOff:
    """A request body whose client goes away after `after` bytes."""

    def __init__(self, data: bytes, *, after: int) -> None:
        self._data, self._after, self._position = data, after, 0

    def read(self, size: int = -1) -> bytes:
        if self._position >= self._after:
            raise OSError("connection reset by peer")
        size = len(self._data) if size < 0 else size
        data = self._data[self._position: min(self._position + size, self._after)]
        self._position += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:  # a WSGI input has it; the parser never calls it
        raise NotImplementedError


def test_the_handler_must_be_installed_before_the_body_is_read(acme, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    request = upload_request(acme, csv_bytes(10))
    request.POST  # noqa: B018
    with pytest.raises(RuntimeError, match="already parsed"):
        storage.install_encrypting_upload(request)


# --- with DRF: the handler goes in before authentication (its CSRF check parses the body) ---------
class UploadApi(APIView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = []

    def initial(self, request, *args, **kwargs):
        self.upload = storage.install_encrypting_upload(request, kind="datasets")
        super().initial(request, *args, **kwargs)

    def post(self, request):
        uploaded = request.data["file"]
        uploaded.keep()
        return Response({"object_id": uploaded.object_id, "bytes": uploaded.stored.plaintext_bytes,
                         "name": request.data["name"]}, status=201)


class SessionUploadApi(UploadApi):
    authentication_classes: ClassVar[list] = [SessionAuthentication]


def test_a_drf_view_installs_the_handler_in_initial(acme, no_temp_files):
    content = csv_bytes(20_000)
    request = APIRequestFactory().post("/api/v1/datasets/", {
        "file": SimpleUploadedFile("sales.csv", content, content_type="text/csv"), "name": "Sales",
    }, format="multipart")
    request.tenant = acme

    response = UploadApi.as_view()(request)

    assert response.status_code == 201
    assert response.data["bytes"] == len(content) and response.data["name"] == "Sales"
    with storage.open_object(acme, "datasets", response.data["object_id"]) as reader:
        assert reader.read() == content


def test_a_session_upload_refused_by_the_csrf_check_leaves_nothing_behind(acme, bob, no_temp_files):
    request = APIRequestFactory(enforce_csrf_checks=True).post("/api/v1/datasets/", {
        "file": SimpleUploadedFile("sales.csv", csv_bytes(1000), content_type="text/csv"),
        "name": "Sales",
    }, format="multipart")
    request.tenant = acme
    request.user = bob
    # With a CSRF cookie but no token, Django reads request.POST looking for the token.
    request.COOKIES[settings.CSRF_COOKIE_NAME] = "a" * 32

    response = SessionUploadApi.as_view()(request)
    parsed = every_file()
    request.close()

    assert response.status_code == 403
    assert "CSRF token missing" in str(response.data)
    assert len(parsed) == 1  # stored (encrypted) by the check's parse, before the refusal
    assert every_file() == []
