"""Draw BEV predictions against GT, one PNG per frame: boxes with track ids, map masks, camera projections.

    # run a model over its test split (tools/test.py's config flow) and draw every frame
    python tools/visualize.py model CONFIG CHECKPOINT --out-dir DIR [--cfg-options k=v ...] [common options]
    # draw a results dump of the test loop (tools/test.py --out, a DumpResults pickle of the predicted samples)
    python tools/visualize.py results RESULTS.pkl --out-dir DIR [--point-cloud-range ...] [common options]
    common options: [--score-thr 0.0] [--scale 8] [--no-cameras] [--contract-orientation] [--video [--fps 2]]

Both modes draw through TrackMapLocalVisualizer (projects/nexusflow/visualization/), as tools/test.py --show-dir
does. PNG layout: left, the GT map (divider, ped_crossing, boundary, drivable) and GT boxes coloured by instance id;
right, the predicted map masks, the GT footprints in grey and the predicted boxes coloured and labelled by track id
(one colour per id, the same in every frame); below, the six camera images with the predicted (track colour) and GT
(white) boxes. BEV panels show LiDAR +y (forward) up unless --contract-orientation keeps the grid's row order
(row i <-> y). Files: DIR/<scene_name>/<frame_idx>_<token>.png; with --video also one video per scene,
DIR/<scene_name>.mp4 (DIR/<scene_name>.gif when OpenCV has no MP4 encoder).

``model`` mode also writes DIR/results.pkl (DumpResults), which ``results`` mode re-draws without the model; so does
``tools/test.py CONFIG CKPT --out results.pkl`` next to the config's metrics.
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mmengine  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from tools.test import build_config  # noqa: E402

from projects.nexusflow.analysis.frame_render import frame_filename, frame_record, load_camera_images  # noqa: E402
from projects.nexusflow.analysis.video import write_scene_videos  # noqa: E402
from projects.nexusflow.engine.visualization_hook import enable_visualization  # noqa: E402
from projects.nexusflow.evaluation import check_checkpoint  # noqa: E402
from projects.nexusflow.visualization import DEFAULT_PC_RANGE, TrackMapLocalVisualizer  # noqa: E402

RESULTS_FILE = 'results.pkl'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--out-dir', required=True, help='folder of the PNGs')
    common.add_argument('--score-thr', type=float, default=0.0, help='draw predicted boxes with score >= this')
    common.add_argument('--scale', type=int, default=8, help='pixels per BEV cell (default 8)')
    common.add_argument('--no-cameras', action='store_true', help='leave out the camera images')
    common.add_argument('--contract-orientation', action='store_true',
                        help='keep the BEV grid row order (row i <-> LiDAR y, +y down) instead of +y up')
    common.add_argument('--video', action='store_true',
                        help='also write one video per scene, DIR/<scene_name>.mp4 (.gif without an MP4 encoder)')
    common.add_argument('--fps', type=float, default=2.0, help='video frames per second (default 2: keyframes)')
    modes = parser.add_subparsers(dest='mode', required=True)
    model = modes.add_parser('model', parents=[common], help='run CONFIG + CHECKPOINT over the test split')
    model.add_argument('config', help='test config file')
    model.add_argument('checkpoint', help='checkpoint file (path or URL)')
    model.add_argument('--work-dir', help='run folder for the logs (default: ./work_dirs/<config name>)')
    model.add_argument('--max-missing-ratio', type=float, default=0.1,
                       help='largest fraction of the model state the checkpoint may leave unset (default 0.1)')
    model.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    results = modes.add_parser('results', parents=[common], help='draw a DumpResults pickle')
    results.add_argument('results', help='pickle of predicted data samples (mmengine DumpResults)')
    results.add_argument('--point-cloud-range', type=float, nargs=6, default=DEFAULT_PC_RANGE,
                         metavar=('X_MIN', 'Y_MIN', 'Z_MIN', 'X_MAX', 'Y_MAX', 'Z_MAX'),
                         help='BEV range of the map masks, metres (default: +-51.2 m)')
    results.add_argument('--canvas-size', type=int, nargs=2, metavar=('H', 'W'),
                         help='BEV grid cells (default: the shape of the map masks)')
    return parser.parse_args(argv)


def vis_task(args) -> str:
    """The visualiser task of the options: BEV and cameras, or BEV only (``--no-cameras``)."""
    return 'lidar_det' if args.no_cameras else 'multi-view_det'


def run_model(args) -> int:
    """tools/test.py's flow with the visualization hook on and a DumpResults evaluator; returns the frame count."""
    out_dir = osp.abspath(args.out_dir)
    cfg = build_config(argparse.Namespace(config=args.config, checkpoint=args.checkpoint, work_dir=args.work_dir,
                                          cfg_options=args.cfg_options, launcher='none', show=False, show_dir=None,
                                          out=None))
    enable_visualization(cfg, test_out_dir=out_dir, score_thr=args.score_thr, vis_task=vis_task(args),
                         scale=args.scale, forward_up=not args.contract_orientation)
    cfg.test_evaluator = dict(type='DumpResults', out_file_path=osp.join(out_dir, RESULTS_FILE))
    runner = Runner.from_cfg(cfg)
    check_checkpoint(runner.model.module if is_model_wrapper(runner.model) else runner.model, args.checkpoint,
                     max_missing_ratio=args.max_missing_ratio)
    runner.test()
    return len(mmengine.load(osp.join(out_dir, RESULTS_FILE)))


def draw_results(args) -> int:
    """Draw every sample of a DumpResults pickle through the visualiser; returns the frame count."""
    if not osp.isfile(args.results):
        raise FileNotFoundError(f'results file {args.results} does not exist; write it with `tools/test.py CONFIG '
                                'CKPT --out FILE.pkl` or `tools/visualize.py model ...`')
    samples = mmengine.load(args.results)
    if not isinstance(samples, list):
        raise TypeError(f'{args.results} holds {type(samples).__name__}, expected the list of predicted data '
                        'samples that DumpResults (tools/test.py --out) writes')
    visualizer = TrackMapLocalVisualizer(name='visualize_results', point_cloud_range=args.point_cloud_range,
                                         scale=args.scale, canvas_size=args.canvas_size,
                                         forward_up=not args.contract_orientation)
    for step, sample in enumerate(samples):
        record = frame_record(sample)
        images = None if args.no_cameras else [img[..., ::-1] for img in load_camera_images(record)]  # RGB
        visualizer.add_datasample('results', dict(img=images), data_sample=sample, vis_task=vis_task(args),
                                  pred_score_thr=args.score_thr, out_file=osp.join(args.out_dir,
                                                                                   frame_filename(record)),
                                  step=step)
    return len(samples)


def main(argv=None) -> int:
    args = parse_args(argv)
    count = run_model(args) if args.mode == 'model' else draw_results(args)
    print(f'drew {count} frames into {args.out_dir}')
    if args.video:
        videos = write_scene_videos(args.out_dir, args.out_dir, fps=args.fps)
        print(f'wrote {len(videos)} scene videos: ' + ', '.join(sorted(videos.values())))
    return count


if __name__ == '__main__':
    main()
