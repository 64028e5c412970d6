"""``RasterPlugin``: the shared plumbing of the PS-MTL baselines (MTPSL, JTR) on UniAD and on MTAN (NYUv2).

Each task names the ``pred_tap`` of its head and a task raster (``task_rasters.py``, ``dense_raster.py``); after a
host forward, :meth:`RasterPlugin.task_rasters` gives every task's prediction raster (graph kept), label raster and
per-sample label flag on one canvas (the BEV canvas on UniAD, the image on NYUv2). Like NexusFlow, the plug-in reads
the host through taps only and never changes an output.
"""
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from ...core.head_tap import PredictionTapAdapter  # noqa: F401  (registers the tap kind used below)
from ...core.taps import TapPlugin
from .task_rasters import canvas_from_samples


class TaskRasters(NamedTuple):
    """One task on the canvas.

    Attributes:
        predictions (Tensor): ``[B, O, H, W]`` float, values in ``[0, 1]``, autograd graph to the head kept.
        labels (Tensor): ``[B, O, H, W]`` float in ``[0, 1]``, no graph; zeros where the sample is unlabelled.
        labelled (Tensor): ``[B]`` bool, the sample carries this task's labels.
    """
    predictions: Tensor
    labels: Tensor
    labelled: Tensor


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """``1 - cos`` over the channels, averaged over the positions: ``[N, C, H, W]`` x2 -> ``[N]`` in ``[0, 2]``
    (the official MTPSL / JTR distance, ``eps=1e-12``)."""
    return 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-12).flatten(1).mean(1)


def check_tasks(tasks: Dict[str, dict], reserved: Sequence[str]) -> None:
    """``ValueError`` unless ``tasks`` maps ``>= 2`` names (none in ``reserved``) to ``dict(tap=str, raster=dict)``."""
    if not isinstance(tasks, dict) or len(tasks) < 2:
        raise ValueError(f'PS-MTL plug-ins relate at least 2 tasks: tasks must be a dict name -> dict(tap=..., '
                         f'raster=...) with >= 2 entries, got {tasks!r}')
    for name, task in tasks.items():
        if name in reserved:
            raise ValueError(f'task name {name!r} is reserved for a feature tap ({list(reserved)}); rename the task')
        if not isinstance(task, dict) or set(task) != {'tap', 'raster'} or not isinstance(task['tap'], str):
            raise ValueError(f"task {name!r} must be dict(tap='<head>.pred_tap', raster=dict(type=...)) exactly, "
                             f'got {task!r}')


class RasterPlugin(TapPlugin):
    """Base of the PS-MTL plug-ins: task taps + rasters, optional feature taps, canvas handling.

    Args:
        tasks (dict[str, dict]): ``N >= 2`` tasks, name -> ``dict(tap=<dotted path of the head's pred_tap>,
            raster=<TASK_UTILS config of a task raster>)``, in a fixed order (the task index of MTPSL's pair code).
        feature_taps (dict[str, dict], optional): extra taps (name -> tap spec, e.g. the BEV encoder output).
        canvas_size (tuple[int, int], optional): ``(H, W)`` of the rasters; ``None`` takes the grid of dense
            image-space predictions when a task has them (``DenseTaskRaster``: the image), else the map GT canvas
            of the batch (``gt_map_instances.masks``), which every sample of the UniAD pipeline carries.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, tasks: Dict[str, dict], feature_taps: Optional[Dict[str, dict]] = None,
                 canvas_size: Optional[Tuple[int, int]] = None, init_cfg: Optional[dict] = None) -> None:
        feature_taps = dict(feature_taps or {})
        check_tasks(tasks, list(feature_taps))
        rasters = {name: TASK_UTILS.build(task['raster']) for name, task in tasks.items()}
        taps = {name: dict(module=task['tap'], kind='NexusFlowPredictionTapAdapter', keys=rasters[name].required_keys)
                for name, task in tasks.items()}
        super().__init__(taps=dict(taps, **feature_taps), init_cfg=init_cfg)
        self.task_names = list(tasks)
        self.rasters = rasters
        self.canvas_size = tuple(canvas_size) if canvas_size is not None else None

    def task_rasters(self, samples: Sequence) -> Dict[str, TaskRasters]:
        """Every task's rasters from the last forward's taps and the batch's labels, in task order.

        Args:
            samples (Sequence[Det3DDataSample]): the ``B`` samples of the frame the taps saw (the last frame of
                each clip), with ``gt_instances_3d`` / ``gt_map_instances`` and the ``has_*_gt`` flags.

        Raises:
            ValueError: a prediction raster's batch size is not ``len(samples)``.
        """
        canvas_hw = self.canvas(samples)
        out = {}
        for name in self.task_names:
            raster = self.rasters[name]
            predictions = raster.predictions(self.tap(name), canvas_hw)
            if predictions.shape[0] != len(samples):
                raise ValueError(f'task {name!r}: the head saw a batch of {predictions.shape[0]} but loss() got '
                                 f'{len(samples)} samples; pass the samples of the frame the heads ran last')
            device = predictions.device
            out[name] = TaskRasters(predictions, raster.labels(samples, canvas_hw, device),
                                    raster.labelled(samples, device))
        return out

    def canvas(self, samples: Sequence) -> Tuple[int, int]:
        """``(H, W)`` of the rasters: ``canvas_size`` when set, else the grid of the first task whose predictions fix
        one (dense image-space heads, ``TaskRaster.native_canvas``), else the map GT canvas of ``samples``."""
        if self.canvas_size is not None:
            return self.canvas_size
        for name in self.task_names:
            native = self.rasters[name].native_canvas(self.tap(name))
            if native is not None:
                return native
        return canvas_from_samples(samples)

    def coverage_term(self) -> Tensor:
        """Exactly 0, but depends on every trainable parameter of the plug-in.

        A batch may leave parts of the plug-in unused (no unlabelled x labelled pair, a task never a source); this
        keeps them in the graph with zero gradient, so DDP works with ``find_unused_parameters=False``.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        zero = params[0].new_zeros(()) if params else torch.zeros(())
        return sum((p.sum() for p in params), zero) * 0.0
