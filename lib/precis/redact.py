"""Secrets out of what precis prints and logs: MLflow params and artifacts, commands,
error messages.

Two rules, applied to a configuration (``redact_mapping``), one value
(``redact_value``) or any text (``redact_text``):

- **By key.** The value of a setting whose dotted name says it holds a secret becomes
  ``***``: a name containing ``password``, ``passwd``, ``secret``, ``token``,
  ``credential``, ``signature``, ``api key``, ``access key``, ``private key`` or
  ``account key`` (``.``, ``_``, ``-`` or nothing between the words, any case), a word
  ``pwd``, ``sas`` or ``sig``, a last segment ``key`` (``fs.s3a.secret.key``,
  ``fs.s3a.access.key``), or a variable ending in ``_KEY`` that Spark sets in an
  environment (``spark.executorEnv.PRECIS_PII_KEY``). A setting whose last segment
  ends in ``env`` (``privacy.pii_key_env``, ``tags.explain.id_env``) names an
  environment variable: the name is no secret and stays. Keys that merely end in
  ``key`` (``id_key``) stay too.
- **By value.** In any text, the password of a URI (``scheme://user:***@host``) and
  the values of secret-looking parameters (``?sig=***``, ``&password=***``,
  ``;token=***`` of a Spark Connect URL, a JDBC ``;password=***``, ``key=***`` in a
  ``k=v`` argument, ``'password': '***'`` in a printed mapping) become ``***``.

What is redacted is only what is shown: the configuration itself keeps its values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

# Long words match anywhere in a name (``fs.azure.sas.token``, ``sasToken``,
# ``keyStorePassword``); the short ones only as whole words (``signin_share`` stays).
_SECRET_PART = re.compile(
    r"password|passwd|secret|token|credential|signature"
    r"|api[._-]?key|access[._-]?key|private[._-]?key|account[._-]?key",
    re.IGNORECASE,
)
_SECRET_WORDS = frozenset({"pwd", "sas", "sig"})
_WORD = re.compile(r"[A-Za-z0-9]+")

# userinfo with a password: ``abfss://container@account...`` (no colon) is no secret.
_URI_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)[^\s/@]+@")
# name=value where name starts the text or follows a character no name has (space, ?, &,
# ;, =, ...): query parameters, JDBC and DSN settings, ``k=v`` arguments. The value runs
# to the next separator.
_PARAM_NAME = re.compile(r"(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]+)=")
_PARAM_VALUE = re.compile(r"[^\s&;,#]*")
# 'name': 'value' / "name": "value" (a printed dict, JSON).
_QUOTED = re.compile(
    r"(?P<head>(?P<q>['\"])(?P<name>[A-Za-z0-9_.-]+)(?P=q)\s*:\s*(?P<q2>['\"]))"
    r"(?P<value>[^'\"]*)(?P=q2)"
)


def is_secret_key(key: str) -> bool:
    """Whether the setting ``key`` (dotted, any depth) holds a secret (module docstring)."""
    segments = [s for s in str(key).split(".") if s]
    if not segments:
        return False
    if segments[-1].lower().endswith("env"):
        return False  # the name of an environment variable, not its value
    if _SECRET_PART.search(key):
        return True
    if any(w.lower() in _SECRET_WORDS for s in segments for w in _words(s)):
        return True
    if segments[-1].lower() == "key":
        return True
    # spark.executorEnv.X / spark.yarn.appMasterEnv.X: X is a variable, its value the secret.
    return (
        len(segments) > 1
        and segments[-2].lower().endswith("env")
        and [w.lower() for w in _words(segments[-1])][-1:] == ["key"]
    )


def _words(segment: str) -> list[str]:
    return [w for part in _WORD.findall(segment) for w in part.split("_") if w]


def redact_value(key: str, value: Any) -> Any:
    """``value`` as it may be shown under ``key``: ``***`` for a secret (an unset one,
    None or empty, stays so), credentials removed from text, mappings and lists
    redacted inside."""
    if isinstance(value, Mapping):
        return redact_mapping(value, prefix=f"{key}." if key else "")
    if value is None or value == "":
        return value
    if is_secret_key(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (list, tuple)):
        items = [redact_value(key, v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def redact_mapping(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A copy of ``data`` (nested, as ``Config.to_dict()`` gives) with secrets as ``***``;
    each key is judged by its full dotted name (``spark.conf.<spark key>``)."""
    return {k: redact_value(f"{prefix}{k}", v) for k, v in data.items()}


def redact_text(text: str) -> str:
    """``text`` with URI passwords and secret-looking ``name=value`` parameters as ``***``."""
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _params(text)
    return _QUOTED.sub(_quoted, text)


def _params(text: str) -> str:
    shown, pos = [], 0
    for m in _PARAM_NAME.finditer(text):
        if m.start() < pos or not is_secret_key(m["name"]):
            continue  # inside a value already masked, or no secret
        value = _PARAM_VALUE.match(text, m.end())
        if value is not None and value.end() > m.end():
            shown += [text[pos : m.end()], MASK]
            pos = value.end()
    return "".join([*shown, text[pos:]])


def _quoted(m: re.Match[str]) -> str:
    secret = m["value"] and is_secret_key(m["name"])
    return f"{m['head']}{MASK}{m['q2']}" if secret else m[0]


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line as it may be printed: ``--conf k=***``, ``--set=k=***``, URIs
    without passwords. Only for showing: the command run keeps its values."""
    return [redact_text(a) for a in argv]


def mask_identifier(value: str) -> str:
    """A shape of an identifier that does not give it away: ``a***@e***.com`` for an
    email, the first character and ``***`` otherwise."""
    local, at, domain = value.partition("@")
    if at:
        host, dot, tld = domain.rpartition(".")
        return (
            f"{local[:1]}{MASK}@{host[:1]}{MASK}{dot}{tld}" if host else f"{local[:1]}{MASK}@{MASK}"
        )
    return f"{value[:1]}{MASK}" if len(value) > 1 else MASK
