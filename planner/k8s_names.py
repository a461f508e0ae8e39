"""Kubernetes' rules for names, labels and image references, and what a secret looks like.

Every user-supplied string that ends up in a manifest passes one of these checks first, so
that nothing with a newline, a quote or YAML syntax can reach a template.
"""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IMAGE = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)+"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@sha256:(?P<digest>[a-f0-9]{64}))?$"
)

SECRET_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face access token
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style API key
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub token
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),  # JWT
)

MAX_LABEL_VALUE = 63
MAX_SUBDOMAIN = 253


def looks_like_secret(value: str) -> bool:
    """Whether `value` contains something shaped like a token, key or private key."""
    return value.startswith("hf_") or any(p.search(value) for p in SECRET_PATTERNS)


def dns1123_label(value: str, what: str, max_length: int = MAX_LABEL_VALUE) -> str:
    """`value` if it is a DNS-1123 label of at most `max_length` characters."""
    if not DNS1123_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 label: use lower-case letters, digits and "
            "'-', starting and ending with a letter or digit"
        )
    if len(value) > max_length:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; at most {max_length}")
    return value


def dns1123_subdomain(value: str, what: str) -> str:
    if len(value) > MAX_SUBDOMAIN or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 subdomain: lower-case letters, digits, '-' "
            "and '.', at most 253 characters"
        )
    return value


def label_key(key: str, what: str = "label key") -> str:
    """A label or annotation key: an optional DNS subdomain prefix and a name of <= 63."""
    prefix, _, name = key.rpartition("/")
    if prefix:
        dns1123_subdomain(prefix, f"{what} prefix of {key!r}:")
    if len(name) > MAX_LABEL_VALUE or not LABEL_NAME.match(name):
        raise ValueError(
            f"{what} {key!r} is not valid: the name part takes letters, digits, '-', '_' and "
            "'.', starts and ends with a letter or digit, at most 63 characters"
        )
    return key


def label_value(value: str, what: str = "label value") -> str:
    if len(value) > MAX_LABEL_VALUE or not LABEL_VALUE.match(value):
        raise ValueError(
            f"{what} {value!r} is not valid: letters, digits, '-', '_' and '.', starting and "
            "ending with a letter or digit, at most 63 characters"
        )
    return value


def pinned_image(image: str) -> str:
    """An image reference with a fixed tag (not `latest`) or a digest."""
    match = IMAGE.match(image)
    if not match:
        raise ValueError(f"image {image!r} is not a valid image reference")
    tag, digest = match.group("tag"), match.group("digest")
    if digest is None and (tag is None or tag == "latest"):
        raise ValueError(
            f"image {image!r} is not pinned: give a version tag (not 'latest') or a digest, "
            "so that every replica runs the same engine"
        )
    return image
