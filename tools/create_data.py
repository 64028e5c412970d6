"""Dataset preparation, as mmdet3d users know it.

    # write a synthetic dataset in the nuScenes on-disk format (tables, JPEGs, map expansion, CAN bus)
    python tools/create_data.py synthetic --out-dir data/nuscenes-synth --scenes-per-city 4 \
        --samples-per-scene 10 --seed 0 --img-size 400 225
    # write nuscenes_infos_temporal_{train,val}.pkl for real or synthetic nuScenes
    python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval \
        --out-dir data/nuscenes [--canbus data/nuscenes]
    # write a synthetic NYUv2-like dataset in the preprocessed MTAN format (projects/nexusflow/nyuv2/README.md)
    python tools/create_data.py nyuv2-synthetic --out-dir data/nyuv2-synth --num-train 795 --num-val 654 \
        --img-size 288 384 --seed 0
    # check a nuScenes-format set: every key-frame file exists, every image decodes fully at its recorded size,
    # every info pkl loads and references existing images (also: --verify after synthetic / nuscenes)
    python tools/create_data.py verify --root-path data/nuscenes-synth --version v1.0-synth

Nothing is overwritten silently: a non-empty --out-dir (synthetic, nyuv2-synthetic) or an existing info pkl of the
same name (nuscenes) is refused unless --overwrite, which replaces the set (the pkls) whole. Outputs are written
into a temporary folder and moved into place only when complete, so an interrupted run leaves the old data as it
was and nothing half-written under the final names.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.logging import print_log  # noqa: E402

from projects.nexusflow.datasets.verify import DatasetCheckError  # noqa: E402
from tools.safe_output import OutputExistsError, staged_dir, staged_files  # noqa: E402

VERSIONS = ('v1.0-trainval', 'v1.0-mini', 'v1.0-test', 'v1.0-synth')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='dataset', required=True)

    synth = sub.add_parser('synthetic', help='generate a synthetic nuScenes-format dataset')
    synth.add_argument('--out-dir', required=True, help='data root to write (created if missing)')
    synth.add_argument('--scenes-per-city', type=int, default=2)
    synth.add_argument('--samples-per-scene', type=int, default=6)
    synth.add_argument('--seed', type=int, default=0)
    synth.add_argument('--img-size', type=int, nargs=2, default=(400, 225), metavar=('W', 'H'))
    synth.add_argument('--version', default='v1.0-synth')
    synth.add_argument('--vehicle-mix', type=_mix_item, nargs='+', metavar='NAME=WEIGHT',
                       help='relative spawn weights of the vehicle classes, e.g. car=0.5 truck=0.3 bus=0.2 '
                       '(default: car=0.8 truck=0.12 bus=0.08; a class left out is not spawned)')
    synth.add_argument('--with-infos', action='store_true',
                       help='also write the info pkls into --out-dir (same as running the nuscenes subcommand)')
    _add_common(synth, verify=True)

    nus = sub.add_parser('nuscenes', help='write temporal info pkls for nuScenes (real or synthetic)')
    nus.add_argument('--root-path', required=True, help='nuScenes data root (holds <version>/, samples/, maps/)')
    nus.add_argument('--version', required=True, choices=VERSIONS)
    nus.add_argument('--out-dir', required=True)
    nus.add_argument('--canbus', default=None,
                     help='folder holding the CAN bus expansion (can_bus/); without it can_bus is derived from ego poses')
    nus.add_argument('--extra-tag', default='nuscenes', help='prefix of the written pkl names')
    _add_common(nus, verify=True)

    nyu = sub.add_parser('nyuv2-synthetic', help='generate a synthetic NYUv2-like dataset (preprocessed MTAN format)')
    nyu.add_argument('--out-dir', required=True, help='data root to write: <out-dir>/{train,val}/... (created)')
    nyu.add_argument('--num-train', type=int, default=795)
    nyu.add_argument('--num-val', type=int, default=654)
    nyu.add_argument('--img-size', type=int, nargs=2, default=(288, 384), metavar=('H', 'W'),
                     help='image height and width (NYUv2 as preprocessed by MTAN: 288 384)')
    nyu.add_argument('--seed', type=int, default=0)
    _add_common(nyu, verify=False)

    ver = sub.add_parser('verify', help='check the files of a nuScenes-format data root (real or synthetic)')
    ver.add_argument('--root-path', required=True, help='data root (holds <version>/, samples/, info pkls)')
    ver.add_argument('--version', required=True)
    return parser.parse_args(argv)


def _mix_item(text: str):
    """``'bus=0.2'`` -> ``('bus', 0.2)``."""
    name, _, weight = text.partition('=')
    try:
        return name, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not NAME=WEIGHT (e.g. bus=0.2)') from None


def _add_common(parser, verify: bool) -> None:
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing outputs (the whole --out-dir; for nuscenes: the pkls of the same '
                        'names) instead of refusing')
    if verify:
        parser.add_argument('--verify', action='store_true',
                            help='afterwards check every referenced file (same as the verify subcommand)')


def verify(root: str, version: str) -> None:
    from projects.nexusflow.datasets.verify import verify_nuscenes_root
    counts = verify_nuscenes_root(root, version)
    print_log(f'verified {root}: {counts["images"]} images decode completely at their recorded size, '
              f'{counts["lidar"]} LiDAR files exist, {counts["infos"]} info pkls load', logger='current')


def main(argv=None):
    args = parse_args(argv)
    if args.dataset == 'verify':
        verify(args.root_path, args.version)
    elif args.dataset == 'synthetic':
        from projects.nexusflow.datasets.synthetic import generate_synthetic_nuscenes
        from projects.nexusflow.datasets.synthetic.styles import vehicle_weights
        mix = dict(args.vehicle_mix) if args.vehicle_mix else None
        try:
            vehicle_weights(mix)
        except ValueError as error:
            raise SystemExit(f'--vehicle-mix: {error}')
        with staged_dir(args.out_dir, args.overwrite) as tmp:
            generate_synthetic_nuscenes(tmp, scenes_per_city=args.scenes_per_city,
                                        samples_per_scene=args.samples_per_scene, seed=args.seed,
                                        img_size=tuple(args.img_size), version=args.version, vehicle_mix=mix)
            if args.with_infos:
                from projects.nexusflow.datasets.converter import create_nuscenes_infos
                create_nuscenes_infos(tmp, args.version, tmp, canbus_root=tmp)
        if args.verify:
            verify(args.out_dir, args.version)
    elif args.dataset == 'nyuv2-synthetic':
        from projects.nexusflow.nyuv2.synthetic import generate_synthetic_nyuv2
        with staged_dir(args.out_dir, args.overwrite) as tmp:
            generate_synthetic_nyuv2(tmp, num_train=args.num_train, num_val=args.num_val,
                                     img_size=tuple(args.img_size), seed=args.seed)
    else:
        from projects.nexusflow.datasets.converter import create_nuscenes_infos, devkit_split_names
        names = [f'{args.extra_tag}_infos_temporal_{split}.pkl' for split in devkit_split_names(args.version)]
        with staged_files(args.out_dir, names, args.overwrite) as tmp:
            create_nuscenes_infos(args.root_path, args.version, tmp, canbus_root=args.canbus,
                                  info_prefix=args.extra_tag)
        print_log(f'moved {names} into {args.out_dir}', logger='current')
        if args.verify:
            verify(args.root_path, args.version)


if __name__ == '__main__':
    try:
        main()
    except (OutputExistsError, DatasetCheckError) as error:
        sys.exit(f'error: {error}')
