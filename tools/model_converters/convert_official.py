"""Shared command line of the three official-checkpoint converters (``*_to_nexusflow.py`` next to this file).

    python tools/model_converters/bevformer_to_nexusflow.py SRC DST [--config CFG] [--overwrite]

Reads ``SRC`` (an mmcv 1.x / mmdet3d 0.17 checkpoint), renames and converts its tensors with
``projects.nexusflow.models.converters``, checks them against the model of ``--config`` (built on the meta device:
no memory, no weights), and writes ``DST`` (``{'state_dict': ..., 'meta': ...}``, loadable with ``load_from``) plus
``DST`` minus ``.pth`` + ``.report.json`` / ``.report.txt``: every source tensor mapped or dropped with a reason,
every model tensor filled or left at init with a reason. The report is printed too. Nothing is written except the
reports when a source key is unrecognised (not the expected checkpoint) or a shape does not fit the config.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

DEFAULT_CONFIG = 'configs/uniad_nexusflow/uniad_full.py'


def load_official_state(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of an official checkpoint (``state_dict`` / ``model`` entry or a raw dict), ``module.``
    prefixes removed. Official files pickle mmcv 1.x metadata, so they are loaded with ``weights_only=False``: convert
    only files you downloaded from the projects' release pages."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'source checkpoint {path} does not exist')
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise TypeError(f'{path} holds {type(ckpt).__name__}, expected a dict with a state dict')
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state.items()
            if isinstance(value, torch.Tensor)}


def target_shapes(config: str) -> Dict[str, tuple]:
    """Key -> shape of the model of ``config``, built on the meta device."""
    import projects.nexusflow  # noqa: F401  (registers the model)
    from mmdet3d.registry import MODELS
    cfg = Config.fromfile(config)
    with torch.device('meta'):
        model = MODELS.build(copy.deepcopy(cfg.model))
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def report_paths(dst: str) -> Dict[str, str]:
    stem = dst[:-len('.pth')] if dst.endswith('.pth') else dst
    return dict(json=stem + '.report.json', text=stem + '.report.txt')


def main(source: str, argv: Optional[Sequence[str]] = None) -> int:
    from projects.nexusflow.models.converters import convert_official
    parser = argparse.ArgumentParser(description=f'Convert an official {source} checkpoint for this project.')
    parser.add_argument('src', help=f'the official {source} checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted checkpoint (.pth)')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help=f'config of the target model (default {DEFAULT_CONFIG})')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing DST')
    args = parser.parse_args(argv)
    if osp.exists(args.dst) and not args.overwrite:
        parser.error(f'{args.dst} exists; pass --overwrite to replace it')
    converted, report = convert_official(load_official_state(args.src), source, target_shapes(args.config))
    text = f'{args.src} -> {args.dst} (target config {args.config})\n' + report.to_text()
    paths = report_paths(args.dst)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    with open(paths['json'], 'w') as f:
        json.dump(dict(report.to_dict(), src=args.src, dst=args.dst, config=args.config), f, indent=1)
    with open(paths['text'], 'w') as f:
        f.write(text + '\n')
    print(text)
    if not report.ok:
        print(f'NOT WRITTEN: {args.src} does not look like an official {source} checkpoint for {args.config} '
              f'(see {paths["text"]})', file=sys.stderr)
        return 1
    meta = dict(converted_from=osp.basename(args.src), source_layout=source, target_config=args.config,
                box_code='mmdet3d 1.x (cx, cy, log l, log w, cz, log h, sin yaw, cos yaw, vx, vy)')
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    print(f'wrote {args.dst} and {paths["json"]}, {paths["text"]}')
    return 0
