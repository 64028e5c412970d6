"""Scene layouts and a stand-in temporal map predictor for the sampler / metric tests.

The predictor's map degrades with the number of frames it has seen since its last scene reset, like a temporal
model whose state matters, so that splitting a scene between processes changes the metrics. (The real model's
2-process runs are in tests/test_distributed.py.)
"""
import torch

SCENE_SIZES = (6, 4, 9, 1, 5, 6, 2)
CANVAS = 8


def scene_infos(scene_sizes=SCENE_SIZES):
    """Per-sample infos in dataset order (scene-major): token, scene_token, frame_idx, location."""
    return [dict(scene_token=f'scene{s}', frame_idx=f, token=f's{s}f{f}',
                 location='boston-seaport' if s % 2 == 0 else 'singapore-onenorth')
            for s, size in enumerate(scene_sizes) for f in range(size)]


def toy_map_gt():
    """GT instances on the CANVAS x CANVAS grid: divider row 2, crossing column 3, boundary row 6, drivable top."""
    masks = torch.zeros(4, CANVAS, CANVAS, dtype=torch.uint8)
    masks[0, 2], masks[1, :, 3], masks[2, 6], masks[3, :4] = 1, 1, 1, 1
    return torch.arange(4), masks


class TemporalMapPredictor:
    """Predicts the GT map with the first ``k`` columns erased, ``k`` = frames seen since the last scene reset."""

    def __init__(self):
        self.scene, self.steps = None, 0

    def __call__(self, scene_token):
        if scene_token != self.scene:
            self.scene, self.steps = scene_token, 0
        self.steps += 1
        pred = toy_map_gt()[1].bool()
        pred[:, :, :min(self.steps, CANVAS)] = False
        return pred


def toy_sample(info, pred=None):
    """The data-sample dict the metrics receive for one info (GT attached, prediction if given)."""
    labels, masks = toy_map_gt()
    sample = dict(info, gt_map_instances=dict(labels=labels, masks=masks))
    if pred is not None:
        sample['pred_map'] = dict(masks=pred)
    return sample
