"""Write a dataset so that an existing one is never mixed with or half-replaced by a new one.

``staged_dir``: a dataset folder that the tool owns entirely (``create_data.py synthetic`` / ``nyuv2-synthetic``)
is written into a temporary sibling folder and renamed into place when complete; an existing non-empty folder is
refused unless ``overwrite``, which replaces it whole (after the new set is complete).

``staged_files``: files written into a folder that holds other data (the info pkls of ``create_data.py nuscenes``
live next to the raw nuScenes data): existing files of the same names are refused unless ``overwrite``; the files
are written into a temporary subfolder and moved into place with ``os.replace`` (atomic per file).

An exception inside either context removes the temporary folder and leaves the destination untouched.
"""
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, Sequence

__all__ = ['OutputExistsError', 'staged_dir', 'staged_files']


class OutputExistsError(FileExistsError):
    """The destination already holds data and ``--overwrite`` was not given."""


@contextmanager
def staged_dir(out_dir: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary folder to write the whole dataset into; on success it becomes ``out_dir``.

    Raises:
        OutputExistsError: ``out_dir`` exists and is not empty, and ``overwrite`` is False.
    """
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise OutputExistsError(f'--out-dir {out_dir} is a file, not a folder')
    if osp.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise OutputExistsError(f'--out-dir {out_dir} already holds data; writing into it would mix two datasets. '
                                f'Choose another --out-dir, or pass --overwrite to replace the folder whole.')
    parent, name = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if osp.isdir(out_dir):
        old = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
        os.rmdir(old)
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def staged_files(out_dir: str, names: Sequence[str], overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary folder inside ``out_dir``; on success the files ``names`` written there replace
    ``out_dir/<name>`` one by one (``os.replace``); other content of ``out_dir`` is not touched.

    Raises:
        OutputExistsError: any ``out_dir/<name>`` exists and ``overwrite`` is False.
        FileNotFoundError: the code inside the context did not write one of ``names``.
    """
    out_dir = osp.abspath(out_dir)
    existing = [name for name in names if osp.exists(osp.join(out_dir, name))]
    if existing and not overwrite:
        raise OutputExistsError(f'{out_dir} already holds {existing}; choose another --out-dir (or --extra-tag), '
                                f'or pass --overwrite to replace these files.')
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.create_data.tmp-', dir=out_dir)
    try:
        yield tmp
        missing = [name for name in names if not osp.isfile(osp.join(tmp, name))]
        if missing:
            raise FileNotFoundError(f'expected outputs {missing} were not written')
        for name in names:
            os.replace(osp.join(tmp, name), osp.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
