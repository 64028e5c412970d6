"""TrackMapLocalVisualizer: the drawing reaches every backend (local PNG, TensorBoard image summary); scene videos."""
import cv2
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from test_analysis_render import PC_RANGE, make_sample

from mmdet3d.registry import VISUALIZERS
from projects.nexusflow.analysis import frame_record, record_grid, render_frame
from projects.nexusflow.analysis import video
from projects.nexusflow.visualization import TrackMapLocalVisualizer


def rgb_views(height=96, width=160):
    """6 uniform RGB camera images, camera 2 reddish (a uniform image stays uniform when resized)."""
    views = [np.full((height, width, 3), 60, dtype=np.uint8) for _ in range(6)]
    views[2][..., 0] = 200
    return views


def expected_rgb(sample, score_thr=0.5, cameras=True):
    record = frame_record(sample, score_thr=score_thr)
    bgr = [np.ascontiguousarray(view[..., ::-1]) for view in rgb_views()] if cameras else None
    return render_frame(record, record_grid(record, PC_RANGE, 4), bgr)[..., ::-1]


def test_drawing_reaches_the_local_and_tensorboard_backends(tmp_path):
    vis = VISUALIZERS.build(dict(type='NexusFlowTrackMapLocalVisualizer', name='backends_test', save_dir=str(tmp_path),
                                 scale=4, vis_backends=[dict(type='LocalVisBackend'),
                                                        dict(type='TensorboardVisBackend')]))
    sample = make_sample()
    vis.add_datasample('test sample', dict(img=rgb_views()), sample, pred_score_thr=0.5, step=3)
    vis.add_datasample('test sample', dict(img=rgb_views(192, 320)), sample, pred_score_thr=0.5, step=4)  # resized
    vis.add_datasample('bev', {}, sample, vis_task='lidar_det', pred_score_thr=0.5, step=0)
    vis.add_datasample('file', dict(img=rgb_views()), sample, pred_score_thr=0.5, out_file=str(tmp_path / 'f.png'))
    expected = expected_rgb(sample)
    assert expected.shape == (384, 404, 3)
    np.testing.assert_array_equal(vis.get_image(), expected)  # set_image: the visualiser holds the last drawing
    vis.close()

    local = tmp_path / 'vis_data' / 'vis_image'
    assert sorted(p.name for p in local.iterdir()) == ['bev_0.png', 'test sample_3.png', 'test sample_4.png']
    for name in ('test sample_3.png', 'test sample_4.png'):
        np.testing.assert_array_equal(cv2.imread(str(local / name))[..., ::-1], expected)
    np.testing.assert_array_equal(cv2.imread(str(local / 'bev_0.png'))[..., ::-1],
                                  expected_rgb(sample, cameras=False))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'f.png'))[..., ::-1], expected)  # out_file only

    events = event_accumulator.EventAccumulator(str(tmp_path / 'vis_data'),
                                                size_guidance={event_accumulator.IMAGES: 0})
    events.Reload()
    assert sorted(events.Tags()['images']) == ['bev', 'test sample']
    summaries = events.Images('test sample')
    assert [s.step for s in summaries] == [3, 4] and (summaries[0].height, summaries[0].width) == (384, 404)
    decoded = cv2.imdecode(np.frombuffer(summaries[1].encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[..., ::-1], expected)

    with pytest.raises(ValueError, match="vis_task 'lidar_seg' is not drawn by TrackMapLocalVisualizer"):
        vis.add_datasample('x', {}, sample, vis_task='lidar_seg')
    with pytest.raises(ValueError, match='point_cloud_range must have 6 values'):
        TrackMapLocalVisualizer(name='bad_range', point_cloud_range=(0, 1))


def write_frames(folder, sizes):
    folder.mkdir(parents=True)
    for index, (height, width) in enumerate(sizes):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[..., 1] = 40 * index
        cv2.imwrite(str(folder / f'{index:03d}_tok{index}.png'), frame)


def test_one_video_per_scene_mp4_or_gif(tmp_path, monkeypatch):
    frames = tmp_path / 'frames'
    write_frames(frames / 'scene-a', [(64, 96)] * 3)
    write_frames(frames / 'scene-b', [(64, 96), (32, 48)])  # a frame of another size is resized
    (frames / 'results.pkl').write_bytes(b'')  # files next to the scene folders are ignored
    assert [p.rsplit('/', 1)[-1] for p in video.scene_frames(str(frames))['scene-a']] == [
        '000_tok0.png', '001_tok1.png', '002_tok2.png']
    videos = video.write_scene_videos(str(frames), str(tmp_path / 'videos'), fps=2)
    assert videos == {'scene-a': str(tmp_path / 'videos' / 'scene-a.mp4'),
                      'scene-b': str(tmp_path / 'videos' / 'scene-b.mp4')}
    for scene, count in (('scene-a', 3), ('scene-b', 2)):
        capture = cv2.VideoCapture(videos[scene])
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == count
        assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (96, 64)
        capture.release()

    class NoEncoder:  # an OpenCV build without an MP4 encoder
        def __init__(self, path, *args):
            self.path = path

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(video.cv2, 'VideoWriter', NoEncoder)
    gifs = video.write_scene_videos(str(frames), str(tmp_path / 'gifs'), fps=4)
    with Image.open(gifs['scene-a']) as gif:
        assert gifs['scene-a'].endswith('scene-a.gif') and gif.n_frames == 3 and gif.size == (96, 64)
        assert gif.info['duration'] == 250
    with pytest.raises(FileNotFoundError, match='no <scene_name>/<frame_idx>_<token>.png frames'):
        video.write_scene_videos(str(tmp_path / 'videos'), str(tmp_path / 'none'))
