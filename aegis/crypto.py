"""Encryption at rest for secrets the platform must read back (channel tokens, TOTP keys).

Keys come from settings.FIELD_ENCRYPTION_KEYS (Fernet keys, newest first). MultiFernet
encrypts with the first and decrypts with any, which is what makes rotation possible
without downtime: prepend a new key, run `manage.py rotate_encryption_key` (which calls
`reencrypt_table` for every model with an encrypted field, in every schema), then drop the
old key.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be encrypted")
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def reencrypt(token: str) -> str:
    """Re-encrypt a token under the current primary key (used by key rotation)."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column whose value is stored as a Fernet token and read back in clear."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


class EncryptedJSONField(models.TextField):
    """A JSON object stored encrypted as one Fernet token (secrets are never queried by value)."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value):
        return None if value is None else encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))


def encrypted_columns(model: type[models.Model]) -> list[str]:
    return [
        field.column
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField | EncryptedJSONField)
    ]


def reencrypt_table(model: type[models.Model], batch_size: int = 500) -> int:
    """Re-encrypt every encrypted column of `model`, in the current schema, under the primary key.

    Works on the stored tokens with SQL, not through save(): no model side effects, no
    `updated_at` bump, and values are never decrypted into Python objects. Returns the number
    of rows rewritten. One transaction per table, rows locked while they are rewritten.
    """
    columns = encrypted_columns(model)
    if not columns:
        return 0
    qn = connection.ops.quote_name
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    selected = ", ".join(qn(c) for c in columns)
    assignments = ", ".join(f"{qn(c)} = %s" for c in columns)
    rewritten = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {selected} FROM {table} ORDER BY {pk} FOR UPDATE")  # noqa: S608
        rows = cursor.fetchall()
        for start in range(0, len(rows), batch_size):
            updates = [
                (*(None if token is None else reencrypt(token) for token in values), key)
                for key, *values in rows[start : start + batch_size]
            ]
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", updates)  # noqa: S608
            rewritten += len(updates)
    return rewritten
