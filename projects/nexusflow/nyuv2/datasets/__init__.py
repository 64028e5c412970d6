"""NYUv2 data: the dataset with partial-label protocols and its transforms."""
from .arrays import check_array, check_split_headers, split_file_paths
from .nyuv2_dataset import NYUv2Dataset
from .transforms import LoadNYUv2Sample, PackNYUv2Inputs, RandomScaleCrop

__all__ = ['NYUv2Dataset', 'LoadNYUv2Sample', 'RandomScaleCrop', 'PackNYUv2Inputs', 'split_file_paths',
           'check_array', 'check_split_headers']
