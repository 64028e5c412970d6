"""Data-pipeline benchmark: ms per training clip and ms per rasterised map frame at full-size settings.

    # on prepared data
    python tools/benchmark_data.py --data-root data/nuscenes --ann-file nuscenes_infos_temporal_train.pkl
    # on a freshly generated 1600x900 synthetic set in a temporary folder (default)
    python tools/benchmark_data.py --scenes-per-city 1 --samples-per-scene 8

The clip figure covers the whole per-frame pipeline of ``queue_length`` frames (image decoding, optional resize,
track GT, map GT, packing) with a per-transform breakdown; the map figure times ``MapRasterizer`` alone
(200x200 canvas over [-51.2, 51.2] m by default; target < 20 ms per frame). The map geometry of every location is
read first and timed separately (a one-off per process in training).
"""
import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAP_TARGET_MS = 20.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', help='prepared nuScenes root; default: generate a synthetic set')
    parser.add_argument('--ann-file', default='nuscenes_infos_temporal_train.pkl', help='relative to --data-root')
    parser.add_argument('--queue-length', type=int, default=3)
    parser.add_argument('--num-clips', type=int, default=10)
    parser.add_argument('--num-map-frames', type=int, default=50)
    parser.add_argument('--img-scale', type=int, nargs=2, metavar=('W', 'H'),
                        help='resize the views to W x H (default: keep the full size)')
    parser.add_argument('--canvas', type=int, nargs=2, default=(200, 200), metavar=('H', 'W'))
    parser.add_argument('--range', type=float, default=51.2, help='BEV half extent in metres')
    parser.add_argument('--line-thickness', type=int, default=2)
    parser.add_argument('--scenes-per-city', type=int, default=1, help='synthetic set only')
    parser.add_argument('--samples-per-scene', type=int, default=8, help='synthetic set only')
    parser.add_argument('--seed', type=int, default=0, help='synthetic set only')
    return parser.parse_args(argv)


def generate_data(root: str, args) -> str:
    """Write a 1600x900 synthetic set and its infos into ``root``; returns the info path of the larger split."""
    import mmengine
    from projects.nexusflow.datasets import create_nuscenes_infos
    from projects.nexusflow.datasets.synthetic import generate_synthetic_nuscenes
    start = time.perf_counter()
    generate_synthetic_nuscenes(root, scenes_per_city=args.scenes_per_city, samples_per_scene=args.samples_per_scene,
                                seed=args.seed, img_size=(1600, 900))
    paths = create_nuscenes_infos(root, 'v1.0-synth', root, canbus_root=root)
    print(f'generated a 1600x900 synthetic set in {time.perf_counter() - start:.1f} s: {root}')
    return max(paths.values(), key=lambda path: len(mmengine.load(path)['data_list']))


class TimedTransform:
    """Wraps a transform and accumulates its wall time (seconds) under its class name."""

    def __init__(self, transform, totals: dict):
        self.transform, self.totals = transform, totals
        self.name = type(transform).__name__

    def __call__(self, results):
        start = time.perf_counter()
        out = self.transform(results)
        self.totals[self.name] += time.perf_counter() - start
        return out


def build_dataset(data_root: str, ann_file: str, args, pc_range):
    from projects.nexusflow.datasets import NuScenesTrackMapDataset
    pipeline = [dict(type='NexusFlowLoadMultiViewImages')]
    if args.img_scale:
        pipeline.append(dict(type='NexusFlowResizeMultiViewImages', scale=tuple(args.img_scale)))
    pipeline += [dict(type='NexusFlowLoadTrackAnnotations3D'),
                 dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=pc_range),
                 dict(type='NexusFlowLoadMapAnnotations', pc_range=pc_range, canvas_size=tuple(args.canvas),
                      line_thickness=args.line_thickness),
                 dict(type='NexusFlowPackTrackMapInputs')]
    return NuScenesTrackMapDataset(data_root=data_root, ann_file=ann_file, pipeline=pipeline,
                                   queue_length=args.queue_length)


def warm_up_map_cache(dataset) -> None:
    """Read every location's map geometry once (a one-off per worker process in training) and report its cost."""
    from projects.nexusflow.datasets.map_rasterizer import load_location_geometry
    for location in sorted({dataset.get_frame_info(i)['location'] for i in range(dataset.num_frames)}):
        start = time.perf_counter()
        load_location_geometry(dataset.data_root, location)
        print(f'map geometry of {location}: read once in {1e3 * (time.perf_counter() - start):.0f} ms')


def bench_clips(dataset, num_clips: int) -> None:
    totals = defaultdict(float)
    dataset.pipeline.transforms = [TimedTransform(t, totals) for t in dataset.pipeline.transforms]
    dataset[0]  # warm-up: file system cache
    totals.clear()
    indices = [i % len(dataset) for i in range(num_clips)]
    start = time.perf_counter()
    for idx in indices:
        item = dataset[idx]
    elapsed = time.perf_counter() - start
    shape = tuple(item['inputs']['img'].shape)
    print(f'clips: {1e3 * elapsed / num_clips:.1f} ms per clip of {shape} (Q, N, 3, H, W) over {num_clips} clips')
    for name, seconds in totals.items():
        print(f'  {name:<26s} {1e3 * seconds / num_clips:8.1f} ms per clip')


def bench_map(dataset, args, pc_range) -> None:
    from projects.nexusflow.datasets import MapRasterizer
    rasterizer = MapRasterizer(pc_range=pc_range, canvas_size=tuple(args.canvas), line_thickness=args.line_thickness)
    frames = [dataset.get_frame_info(i % dataset.num_frames) for i in range(args.num_map_frames)]
    poses = [(f['location'], np.asarray(f['ego2global']) @ np.asarray(f['lidar2ego'])) for f in frames]
    times, instances = [], []
    for location, lidar2global in poses:
        start = time.perf_counter()
        gt = rasterizer(dataset.data_root, location, lidar2global)
        times.append(time.perf_counter() - start)
        instances.append(len(gt['labels']))
    times = 1e3 * np.array(times)
    verdict = 'meets' if times.mean() < MAP_TARGET_MS else 'MISSES'
    print(f'map GT: {times.mean():.2f} ms per frame (median {np.median(times):.2f}, max {times.max():.2f}) on a '
          f'{args.canvas[0]}x{args.canvas[1]} canvas, {np.mean(instances):.1f} instances per frame; '
          f'{verdict} the {MAP_TARGET_MS:.0f} ms target')


def main(argv=None):
    args = parse_args(argv)
    pc_range = [-args.range, -args.range, -5.0, args.range, args.range, 3.0]
    with tempfile.TemporaryDirectory(prefix='nexusflow-bench-') as tmp:
        if args.data_root:
            data_root, ann_file = args.data_root, args.ann_file
        else:
            data_root = tmp
            ann_file = generate_data(tmp, args)
        dataset = build_dataset(data_root, ann_file, args, pc_range)
        warm_up_map_cache(dataset)
        bench_clips(dataset, args.num_clips)
        bench_map(dataset, args, pc_range)


if __name__ == '__main__':
    main()
