"""Strict image decoding: an empty, truncated or undecodable file is an error naming the file, never wrong pixels.

OpenCV decodes a JPEG cut short without complaint (libjpeg fills the missing rows with grey and only prints a
warning) and fails on an empty buffer with ``!buf.empty()``. ``decode_image`` checks the end-of-image marker of
JPEG (``FF D9``) and PNG (``IEND`` chunk) files before decoding and the result after.
"""
from typing import Optional, Tuple

import mmcv
import numpy as np

__all__ = ['CorruptImageError', 'decode_image', 'check_complete']

JPEG_SOI, JPEG_EOI = b'\xff\xd8', b'\xff\xd9'
PNG_SIGNATURE, PNG_IEND = b'\x89PNG\r\n\x1a\n', b'IEND\xaeB`\x82'


class CorruptImageError(ValueError):
    """An image file is empty, truncated or cannot be decoded."""


def check_complete(img_bytes: bytes) -> Optional[str]:
    """Why ``img_bytes`` is not a complete image file (``None`` when it looks complete or is another format)."""
    if len(img_bytes) == 0:
        return 'the file is empty (0 bytes)'
    tail = img_bytes.rstrip(b'\x00')
    if img_bytes.startswith(JPEG_SOI) and not tail.endswith(JPEG_EOI):
        return f'the JPEG is truncated ({len(img_bytes)} bytes, no end-of-image marker FF D9)'
    if img_bytes.startswith(PNG_SIGNATURE) and not tail.endswith(PNG_IEND):
        return f'the PNG is truncated ({len(img_bytes)} bytes, no IEND chunk)'
    return None


def decode_image(img_bytes: bytes, path: str, sample: Optional[str] = None,
                 expected_hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Decode a colour image (uint8 ``[H, W, 3]``, BGR) or raise ``CorruptImageError`` naming ``path`` and ``sample``.

    Args:
        img_bytes (bytes): the file content.
        path (str): the file, for the message.
        sample (str, optional): the sample token that references it, for the message.
        expected_hw (tuple, optional): ``(H, W)`` the image must have.
    """
    where = f'image {path}' + (f' of sample {sample}' if sample else '')
    fix = ('; replace the file from the original download or recreate the dataset (tools/create_data.py), then '
           'check the set with tools/create_data.py verify --root-path <data_root> --version <version>')
    problem = check_complete(img_bytes)
    if problem is not None:
        raise CorruptImageError(f'{where}: {problem}{fix}')
    img = mmcv.imfrombytes(img_bytes, flag='color', channel_order='bgr')
    if img is None:
        raise CorruptImageError(f'{where}: could not be decoded (not an image, or corrupt){fix}')
    if expected_hw is not None and tuple(img.shape[:2]) != tuple(expected_hw):
        raise CorruptImageError(f'{where}: size (H, W) {img.shape[:2]} differs from {tuple(expected_hw)} recorded in '
                                f'the tables{fix}')
    return img
