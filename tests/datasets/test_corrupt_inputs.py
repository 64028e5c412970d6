"""Corrupt inputs give one error naming the file (and the sample), never wrong pixels or a library traceback."""
import shutil

import cv2
import numpy as np
import pytest

from projects.nexusflow.datasets import NuScenesTrackMapDataset
from projects.nexusflow.datasets.image_io import CorruptImageError, check_complete, decode_image
from projects.nexusflow.datasets.verify import DatasetCheckError


def _jpeg(height=36, width=64):
    img = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', img)[1].tobytes()


def test_decode_image_rejects_partial_files():
    data = _jpeg()
    assert check_complete(data) is None
    assert decode_image(data, 'a.jpg', 'tok').shape == (36, 64, 3)
    with pytest.raises(CorruptImageError, match=r'image a.jpg of sample tok: the JPEG is truncated \(\d+ bytes, no '
                                                r'end-of-image marker FF D9\); replace the file'):
        decode_image(data[:len(data) - 40], 'a.jpg', 'tok')
    with pytest.raises(CorruptImageError, match=r'image b.jpg of sample tok: the file is empty \(0 bytes\)'):
        decode_image(b'', 'b.jpg', 'tok')
    with pytest.raises(CorruptImageError, match='image c.jpg: could not be decoded'):
        decode_image(b'not an image', 'c.jpg')
    png = cv2.imencode('.png', np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    assert check_complete(png) is None and 'PNG is truncated' in check_complete(png[:-5])
    with pytest.raises(CorruptImageError, match=r'size \(H, W\) \(36, 64\) differs from \(40, 64\)'):
        decode_image(data, 'a.jpg', expected_hw=(40, 64))


@pytest.mark.parametrize('damage', ['truncate', 'empty'])
def test_loading_names_the_file_and_sample(synthetic_root, synthetic_infos, tmp_path, damage):
    root = tmp_path / 'copy'
    shutil.copytree(synthetic_root, root)
    dataset = NuScenesTrackMapDataset(data_root=str(root), ann_file=synthetic_infos['train'], queue_length=1,
                                      pipeline=[dict(type='NexusFlowLoadMultiViewImages')])
    info = dataset.get_frame_info(0)
    path = info['images']['CAM_FRONT_LEFT']['img_path']
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2] if damage == 'truncate' else b'')
    with pytest.raises(CorruptImageError) as err:
        dataset[0]
    assert f'image {path} of sample {info["token"]}: ' in str(err.value)


def test_truncated_info_pkl_is_named(synthetic_infos, synthetic_root, tmp_path):
    broken = tmp_path / 'infos.pkl'
    with open(synthetic_infos['train'], 'rb') as f:
        broken.write_bytes(f.read()[:200])
    with pytest.raises(DatasetCheckError, match=f'info file {broken} could not be read .*; it is truncated or not an '
                                                f'info pkl. Recreate it: python tools/create_data.py nuscenes'):
        NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=str(broken))


def test_no_clip_fits_names_queue_length(synthetic_root, synthetic_infos):
    with pytest.raises(ValueError, match=r'no clip of queue_length=7 consecutive frames fits in any scene \(the '
                                         r'longest scene has 6 linked frames\); lower queue_length, or create the '
                                         r'data with more samples per scene'):
        NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=synthetic_infos['train'], queue_length=7)


class OneCityClips:
    """Stands in for NuScenesTrackMapDataset: clips only in Boston (Singapore's scenes are too short)."""
    queue_length = 3

    def full_init(self):
        pass

    def __len__(self):
        return 2

    def get_data_info(self, idx):
        return dict(location='boston-seaport')


def test_geo_split_names_the_clip_length_when_a_city_has_no_clip():
    from projects.nexusflow.datasets import GeoSplitDataset
    with pytest.raises(ValueError, match=r"geo split 'standard' leaves the track task without labelled samples .*"
                                         r"\['singapore'\] holds no clip of 3 consecutive frames: lower queue_length"):
        GeoSplitDataset(OneCityClips(), split='standard').full_init()
