"""The encrypted object store for tenant files; see objects.py for the file format.

    from mlcore import storage
    with storage.EncryptedWriter(tenant, "datasets", object_id) as out: ...; out.commit()
    reader = storage.open_object(tenant, "datasets", object_id)
"""

from .kinds import DATASETS, MODELS, PREDICTIONS, PROFILES, SAMPLES
from .objects import (
    CHUNK_SIZE,
    EncryptedReader,
    EncryptedWriter,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    StorageError,
    StorageIntegrityError,
    StorageKeyError,
    StoredObject,
    delete_object,
    delete_partial_files,
    iter_objects,
    object_path,
    open_object,
    reseal_file,
    sweep_partial_files,
    verify_object,
)
from .rotation import ReencryptResult, count_by_key_version, reencrypt_object, reencrypt_tenant
from .uploads import (
    EncryptedUploadedFile,
    EncryptingUploadHandler,
    UploadRefused,
    install_encrypting_upload,
)

__all__ = [
    "CHUNK_SIZE", "DATASETS", "MODELS", "PREDICTIONS", "PROFILES", "SAMPLES", "EncryptedReader", "EncryptedUploadedFile", "EncryptedWriter",
    "EncryptingUploadHandler", "ObjectExists", "ObjectInfo", "ObjectMissing", "ReencryptResult",
    "StorageError", "StorageIntegrityError", "StorageKeyError", "StoredObject", "UploadRefused",
    "count_by_key_version", "delete_object", "delete_partial_files", "install_encrypting_upload", "iter_objects",
    "object_path", "open_object", "reencrypt_object", "reencrypt_tenant", "reseal_file", "sweep_partial_files", "verify_object",
]
