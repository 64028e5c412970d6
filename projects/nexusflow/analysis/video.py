"""One video per scene from the drawn frames (``tools/visualize.py --video``).

Frames are the images ``<frames_dir>/<scene_name>/<frame_idx:03d>_<token>.png`` that the visualiser writes
(:func:`~.frame_render.frame_filename`). Each scene becomes ``<out_dir>/<scene_name>.mp4`` through OpenCV's
``VideoWriter`` (``mp4v``); when this OpenCV build cannot open an MP4 writer, ``<scene_name>.gif`` through Pillow.
Frames of other sizes than the scene's first are resized to it (a video has one frame size).
"""
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np
from PIL import Image

__all__ = ['scene_frames', 'write_video', 'write_scene_videos']

FOURCC = 'mp4v'


def _frame_index(path: str) -> int:
    """The ``frame_idx`` of ``<frame_idx>_<token>.png``."""
    prefix = osp.basename(path).split('_', 1)[0]
    if not prefix.isdigit():
        raise ValueError(f'{path} is not a drawn frame named <frame_idx>_<token>.png')
    return int(prefix)


def scene_frames(frames_dir: str) -> Dict[str, List[str]]:
    """``{scene_name: frame paths in frame order}`` of the scene folders under ``frames_dir`` holding PNGs."""
    scenes = {}
    for scene in sorted(os.listdir(frames_dir)):
        folder = osp.join(frames_dir, scene)
        pngs = [osp.join(folder, name) for name in os.listdir(folder) if name.endswith('.png')] \
            if osp.isdir(folder) else []
        if pngs:
            scenes[scene] = sorted(pngs, key=_frame_index)
    return scenes


def _read_frames(paths: Sequence[str]) -> List[np.ndarray]:
    """The images (BGR uint8), all resized to the first one's size."""
    frames = []
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read the drawn frame {path}')
        if frames and img.shape != frames[0].shape:
            img = cv2.resize(img, (frames[0].shape[1], frames[0].shape[0]), interpolation=cv2.INTER_AREA)
        frames.append(img)
    return frames


def write_video(paths: Sequence[str], out_base: str, fps: float = 2.0) -> str:
    """Write the frames ``paths`` (in order) as ``out_base + '.mp4'``, or ``'.gif'`` without an MP4 encoder.

    Args:
        paths (Sequence[str]): image files of one scene, in time order.
        out_base (str): output path without the extension.
        fps (float): frames per second (nuScenes keyframes come at 2 Hz).

    Returns:
        str: the written file.
    """
    if not paths:
        raise ValueError(f'no frames to write into {out_base}')
    if fps <= 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    frames = _read_frames(paths)
    height, width = frames[0].shape[:2]
    out_file = out_base + '.mp4'
    writer = cv2.VideoWriter(out_file, cv2.VideoWriter_fourcc(*FOURCC), fps, (width, height))
    if writer.isOpened():
        for frame in frames:
            writer.write(frame)
        writer.release()
        return out_file
    writer.release()
    if osp.exists(out_file):
        os.remove(out_file)
    out_file = out_base + '.gif'
    images = [Image.fromarray(np.ascontiguousarray(frame[..., ::-1])) for frame in frames]
    images[0].save(out_file, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    return out_file


def write_scene_videos(frames_dir: str, out_dir: str, fps: float = 2.0) -> Dict[str, str]:
    """One video per scene folder of ``frames_dir`` into ``out_dir``; returns ``{scene_name: video path}``.

    Raises:
        FileNotFoundError: ``frames_dir`` holds no scene folder with drawn frames.
    """
    scenes = scene_frames(frames_dir)
    if not scenes:
        raise FileNotFoundError(f'{frames_dir} holds no <scene_name>/<frame_idx>_<token>.png frames to make videos '
                                'of')
    os.makedirs(out_dir, exist_ok=True)
    return {scene: write_video(paths, osp.join(out_dir, scene), fps) for scene, paths in scenes.items()}
