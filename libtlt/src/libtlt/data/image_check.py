"""Images that cannot be decoded, named inside ``tf.data`` and recognised after ``model.fit`` fails.

Why: a truncated PNG that reached training made TensorFlow's decoder fail mid-epoch with an error that
names no file. :func:`checked_decode` checks, cheaply and inside the graph, that a PNG ends with its
IEND chunk and a JPEG holds its end-of-image marker near the end, and fails with an assertion whose
message carries :data:`MARKER`, the file and the reason; :func:`undecodable_image` turns TensorFlow's
error text back into ``(path, reason)`` for one line and exit status 2.

TensorFlow is imported inside the functions; importing this module is light.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from libtlt.errors import DataError
from libtlt.log import get_logger

logger = get_logger(__name__)

#: Tag of the assertion message (parsed by :func:`undecodable_image`).
MARKER = "tlt-undecodable-image"
#: Bytes of a JPEG's end searched for the end-of-image marker (encoders may pad after it).
JPEG_TAIL = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A PNG's last 12 bytes: the empty IEND chunk (length 0, type, CRC).
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

_MESSAGE = re.compile(re.escape(MARKER) + r"\]\s*\[(?:b['\"])?(?P<path>.*?)(?:['\"])?\]\s*\[(?P<reason>[^\]]*)\]")
#: TensorFlow decoder messages that mean "this file is not a decodable image".
_DECODER_ERRORS = re.compile(r"Invalid PNG|Invalid JPEG|JPEG|Input is empty|Unknown image file format|"
                             r"decode_image|DecodeImage|DecodePng|DecodeJpeg|DecodeBmp|DecodeGif", re.IGNORECASE)


#: TensorFlow's text for ``read_file`` of a missing path: ``<path>; No such file or directory``.
_MISSING_FILE = re.compile(r"(?P<path>[^\s;:]+); No such file or directory")

def image_complete(contents: Any) -> Any:
    """A scalar bool tensor: false for a PNG without its IEND chunk or a JPEG without an end marker.

    Other formats (and files too short to tell) are left to the decoder.
    """
    import tensorflow as tf

    size = tf.strings.length(contents)
    head = tf.strings.substr(contents, 0, tf.minimum(size, 8))
    is_png = tf.equal(head, PNG_SIGNATURE)
    is_jpeg = tf.equal(tf.strings.substr(contents, 0, tf.minimum(size, 2)), b"\xff\xd8")
    png_ok = tf.equal(tf.strings.substr(contents, tf.maximum(size - 12, 0), tf.minimum(size, 12)), PNG_IEND)
    tail = tf.io.decode_raw(tf.strings.substr(contents, tf.maximum(size - JPEG_TAIL, 0), tf.minimum(size, JPEG_TAIL)),
                            tf.uint8)
    pairs = tf.logical_and(tf.equal(tail[:-1], 0xFF), tf.equal(tail[1:], 0xD9))
    jpeg_ok = tf.reduce_any(pairs)
    return tf.logical_and(tf.logical_and(size > 0, tf.logical_or(tf.logical_not(is_png), png_ok)),
                          tf.logical_or(tf.logical_not(is_jpeg), jpeg_ok))


def checked_decode(path: Any, channels: int) -> Any:
    """``tf.io.decode_image`` of the file at ``path`` (uint8 HWC), failing with the file's name when the
    file is empty or truncated (see :func:`image_complete`)."""
    import tensorflow as tf

    contents = tf.io.read_file(path)
    check = tf.debugging.Assert(image_complete(contents),
                                [MARKER, path, "truncated or empty image (no PNG IEND chunk / JPEG end marker)"])
    with tf.control_dependencies([check]):
        contents = tf.identity(contents)
    return tf.io.decode_image(contents, channels=channels, expand_animations=False)


def undecodable_image(message: str) -> tuple[str, str] | None:
    """``(path, reason)`` from the text of a TensorFlow error raised by :func:`checked_decode`, else None."""
    match = _MESSAGE.search(message)
    if match is None:
        return None
    return match.group("path"), match.group("reason").strip()


def find_undecodable(paths: Iterable[str]) -> tuple[str, str] | None:
    """The first of ``paths`` that Pillow cannot decode completely, with the reason; None if all decode.

    Why: TensorFlow's decoder error names no file; this runs only after such a failure, to name it.
    """
    from PIL import Image

    for path in dict.fromkeys(paths):
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for bad image data
            return path, f"not a decodable image ({err})"
    return None


def decoder_error_line(message: str) -> str | None:
    """The line of a TensorFlow error's text that is an image decoder's complaint (a corrupt file it
    cannot name, e.g. ``Invalid PNG data, size 247449``), or None when it is some other error."""
    for line in message.splitlines():
        if _DECODER_ERRORS.search(line):
            return line.strip()
    return None


def image_error(message: str, images: Sequence[str] = (),
                what: str = "an image of the dataset") -> DataError | None:
    """A ``DataError`` naming the image behind a TensorFlow error's text, or None for another error.

    The file comes from :func:`checked_decode`'s assertion or, for a decoder error that names none,
    from decoding ``images`` (the pipeline's files) until one fails; failing that, the decoder's line.
    """
    found = undecodable_image(message)
    if found is not None:
        return DataError(f"cannot read the image: {found[1]}", location=found[0])
    missing = _MISSING_FILE.search(message)
    if missing is not None:  # tf.io.read_file of a path that is not there (e.g. a wrong image_directory_path)
        return DataError("the image file does not exist (check the spec's image directory and extension)",
                         location=missing.group("path"))
    complaint = decoder_error_line(message)
    if complaint is None:
        return None
    if images:
        logger.info("TensorFlow could not decode an image; checking the %d image files to name it", len(images))
        found = find_undecodable(images)
        if found is not None:
            return DataError(f"cannot read the image: {found[1]}", location=found[0])
    return DataError(f"{what} could not be decoded (TensorFlow: {complaint[:300]})")
