"""NYUv2 metrics (segmentation, depth, normals) accumulated over the whole split."""
from .functional import (NORMAL_THRESHOLDS, confusion_matrix, delta_mtl, depth_scores, depth_sums, histogram_median,
                         normal_angles, normal_scores, normal_sums, segmentation_scores)
from .nyuv2_metric import NYUv2Metric

__all__ = ['NYUv2Metric', 'confusion_matrix', 'segmentation_scores', 'depth_sums', 'depth_scores', 'normal_angles',
           'normal_sums', 'normal_scores', 'histogram_median', 'delta_mtl', 'NORMAL_THRESHOLDS']
