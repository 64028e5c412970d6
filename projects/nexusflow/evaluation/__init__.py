"""Evaluation: the nuScenes tracking metric (devkit TrackingEval, overall and per city), the nuScenes detection
metric (devkit DetectionEval: NDS, mAP) and the map IoU metric."""
from .checkpoint_check import CheckpointMismatchError, CheckpointReadError, check_checkpoint, check_checkpoint_file
from .detection_metric import NuScenesDetectionMetric, evaluate_detection_results, sample_detection_boxes
from .map_iou_metric import MAP_CLASSES, MAP_IOU_NAMES, MapIoUMetric, map_iou_counts, semantic_gt_masks
from .tracking_eval import (TRACKING_SUMMARY_METRICS, SubsetTrackingEval, evaluate_tracking_results,
                            load_tracking_config, split_sample_tokens)
from .tracking_format import lidar_boxes_to_global, sample_tracking_boxes
from .tracking_metric import NuScenesTrackingMetric, resolve_eval_set

__all__ = [
    'NuScenesTrackingMetric', 'NuScenesDetectionMetric', 'evaluate_detection_results', 'sample_detection_boxes',
    'MapIoUMetric', 'SubsetTrackingEval', 'evaluate_tracking_results',
    'load_tracking_config', 'split_sample_tokens', 'resolve_eval_set', 'lidar_boxes_to_global',
    'sample_tracking_boxes', 'map_iou_counts', 'semantic_gt_masks', 'check_checkpoint', 'CheckpointMismatchError',
    'CheckpointReadError', 'check_checkpoint_file',
    'TRACKING_SUMMARY_METRICS', 'MAP_CLASSES', 'MAP_IOU_NAMES'
]
