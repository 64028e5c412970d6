"""Helpers shared by the metrics: order-independent handling of gathered per-sample results, settings taken from
the evaluated dataset, the output folder.

mmengine's ``collect_results`` returns the per-rank result lists interleaved (``zip_longest`` over the ranks) and
truncated to the dataset size, so the order of the gathered list depends on the number of processes and on the
sampler. The metrics key every result by its sample token and sort by it before evaluating, which makes the
figures independent of that order.
"""
import logging
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from mmengine.logging import MMLogger, print_log

__all__ = ['unique_by_token', 'get_meta', 'evaluation_dir', 'dataset_setting']


def unique_by_token(results: Sequence[Dict[str, Any]], metric_name: str) -> List[Dict[str, Any]]:
    """Results sorted by ``'token'``, one per sample token (the first occurrence wins; duplicates are logged).

    Args:
        results: gathered per-sample records, each with a ``'token'`` (nuScenes sample token, str).
        metric_name: name used in the warning about duplicates.

    Returns:
        list of records sorted by token, without duplicate tokens.
    """
    by_token: Dict[str, Dict[str, Any]] = {}
    for record in results:
        by_token.setdefault(record['token'], record)
    if len(by_token) != len(results):
        print_log(f'{metric_name}: {len(results) - len(by_token)} results repeat a sample token (a padding '
                  f'sampler?); the first result of each sample is kept. Use SceneAwareSampler for testing.',
                  logger='current', level=logging.WARNING)
    return [by_token[token] for token in sorted(by_token)]


def get_meta(sample: Mapping[str, Any], key: str, metric_name: str) -> Any:
    """``sample[key]`` for a data-sample dict, or a ``KeyError`` that names the missing meta key."""
    if key not in sample:
        raise KeyError(f'{metric_name}: the data sample lacks {key!r} (has {sorted(sample)}); the test pipeline '
                       f'must pack it into the metainfo (see the data-sample contract in projects/nexusflow/README.md)')
    return sample[key]


def dataset_setting(metric: Any, name: str, required: bool = True) -> Any:
    """The metric's own ``name`` argument, else the evaluated dataset's (``metric.dataset_meta[name]``).

    The runner sets ``dataset_meta`` from the val/test dataset's metainfo; ``NuScenesTrackMapDataset`` publishes
    its ``data_root``, ``ann_file`` (full path) and the info pkl's ``version`` / ``eval_set`` there, so the metrics
    of a config need none of them and follow the dataset wherever its root is moved.

    Raises:
        ValueError: ``required`` and neither the argument nor ``dataset_meta`` gives a value.
    """
    value = getattr(metric, name)
    if value is None and metric.dataset_meta:
        value = metric.dataset_meta.get(name)
    if value is None and required:
        raise ValueError(f'{type(metric).__name__}: {name} is not set and dataset_meta has no {name!r}; pass '
                         f'{name}= to the metric, or evaluate it in a runner whose val/test dataset is a '
                         f'NuScenesTrackMapDataset (it publishes data_root, ann_file and version in its metainfo)')
    return value


@contextmanager
def evaluation_dir(output_dir: Optional[str], default_name: str) -> Iterator[str]:
    """The folder a devkit-based metric writes its result json and summaries into.

    Args:
        output_dir: the metric's ``output_dir`` argument; used as given when not None.
        default_name: sub-folder name next to the runner's log file (``<work_dir>/<timestamp>/<default_name>``)
            when ``output_dir`` is None; without a log file, a temporary folder removed on exit.

    Yields:
        str: the folder path.
    """
    if output_dir is not None:
        yield output_dir
        return
    log_file = MMLogger.get_current_instance().log_file
    if log_file is not None:
        yield osp.join(osp.dirname(log_file), default_name)
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        yield tmp_dir
