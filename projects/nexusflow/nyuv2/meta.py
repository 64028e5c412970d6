"""Constants of the preprocessed NYUv2 (MTAN / MTPSL) format shared by the data, model and metric code.

On disk (``root/{train,val}/{image,label,depth,normal}/{i}.npy``, ``i = 0 .. N-1``), per sample:

- ``image``: float ``[H, W, 3]`` RGB in ``[0, 1]``;
- ``label``: float or int ``[H, W]``, class index in ``[0, 13)`` (:data:`NYU13_CLASSES`), ``-1`` = ignore;
- ``depth``: float ``[H, W, 1]`` metric depth along the optical axis (camera ``z``) in metres, ``0`` = invalid;
- ``normal``: float ``[H, W, 3]`` unit surface normals in the camera frame, all-zero = invalid.
"""
# NYUv2-13 (Couprie et al. 2013), in the order of the preprocessed label values 0..12 (the 14-class map minus
# 'unknown', which became -1)
NYU13_CLASSES = ('bed', 'books', 'ceiling', 'chair', 'floor', 'furniture', 'objects', 'picture', 'sofa', 'table',
                 'tv', 'wall', 'window')
NUM_CLASSES = len(NYU13_CLASSES)
IGNORE_INDEX = -1
# task names in the fixed order of label masks, flags and heads
TASKS = ('seg', 'depth', 'normal')
# data sample metainfo flag of each task
TASK_FLAGS = {'seg': 'has_seg', 'depth': 'has_depth', 'normal': 'has_normal'}
# sub-folders of a split and the array layout of each (``H``/``W`` are the image size)
ARRAY_FOLDERS = ('image', 'label', 'depth', 'normal')
ARRAY_LAYOUTS = {'image': 'H x W x 3', 'label': 'H x W', 'depth': 'H x W x 1', 'normal': 'H x W x 3'}
SPLITS = ('train', 'val')
# the preprocessed NYUv2 of MTAN: 795 train / 654 val images of 288 x 384
NYUV2_SIZE = (288, 384)
