"""Collection and alias name rules, as Qdrant validates them."""

from pydrant.errors import ValidationFailed

MAX_NAME_LENGTH = 255
# A name becomes a directory name: most filesystems take 255 bytes, and a name of 255
# characters outside ASCII is longer than that in UTF-8. Refused up front, so a create or
# delete never fails half-way in the filesystem.
MAX_NAME_BYTES = 255
# Characters Qdrant refuses in collection names (common::validation::validate_collection_name,
# its INVALID_CHARS): they are unsafe in file paths.
FORBIDDEN_CHARS = '<>:"/\\|?*\0\x1f'


def validate_name(name: str, what: str = "collection_name") -> None:
    if not name:
        raise ValidationFailed(f"Validation error in path parameters: [{what}: length 0 invalid, must be in 1..=255]")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"Validation error in path parameters: [{what}: length {len(name)} invalid, must be in 1..=255]"
        )
    encoded_length = len(name.encode("utf-8", "surrogatepass"))
    if encoded_length > MAX_NAME_BYTES:
        raise ValidationFailed(
            f"Validation error in path parameters: [{what}: name is {encoded_length} bytes long in UTF-8, "
            f"must be at most {MAX_NAME_BYTES}]"
        )
    # Qdrant looks for each forbidden character in its list order and names the first found,
    # written as is (a NUL or unit separator is in the message itself, escaped by JSON).
    bad = next((c for c in FORBIDDEN_CHARS if c in name), None)
    if bad is not None:
        raise ValidationFailed(
            f"Validation error in path parameters: [{what}: collection name cannot contain \"{bad}\" char]"
        )
    if name in (".", ".."):
        raise ValidationFailed(f"Validation error in path parameters: [{what}: collection name cannot be {name!r}]")
