"""Rule-based renaming of a state dict, with a report that accounts for every source and every target key.

A :class:`Rule` matches source keys with a regular expression (full match). It either maps the key to a target
name (a ``re`` template such as ``r'bev_encoder.layers.\\1.ffn.\\2'``), optionally through a named tensor
transform, or drops it with a reason. The first matching rule wins; a source key that no rule matches is
*unrecognised*, which the converters treat as an error (a checkpoint of another layout).
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

__all__ = ['ConversionError', 'Rule', 'ConversionReport', 'apply_rules']


class ConversionError(ValueError):
    """The source checkpoint does not have the expected layout, or the result does not fit the target model."""


@dataclass(frozen=True)
class Rule:
    """One renaming rule.

    Attributes:
        pattern (str): regular expression, matched against the whole source key.
        target (str, optional): ``re`` replacement template of the target key; ``None`` drops the key.
        reason (str): why the key is dropped, or what the transform does (shown in the report).
        transform (str, optional): name of a tensor transform applied after renaming (see ``apply_rules``).
    """
    pattern: str
    target: Optional[str]
    reason: str = ''
    transform: Optional[str] = None


@dataclass
class ConversionReport:
    """What happened to every key.

    Attributes:
        source (str): name of the source layout (``bevformer``, ``uniad``, ``fcos3d``).
        mapped (dict): target key -> source key, for renamed tensors.
        transformed (dict): target key -> description, for tensors whose values were changed.
        dropped (dict): source key -> reason.
        unrecognised (list): source keys no rule matched.
        left_at_init (dict): target key -> reason, for model tensors the checkpoint does not fill.
        shape_mismatch (list): ``(target key, model shape, converted shape)``.
        not_in_model (list): converted keys the target model does not have.
    """
    source: str
    mapped: Dict[str, str] = field(default_factory=dict)
    transformed: Dict[str, str] = field(default_factory=dict)
    dropped: Dict[str, str] = field(default_factory=dict)
    unrecognised: List[str] = field(default_factory=list)
    left_at_init: Dict[str, str] = field(default_factory=dict)
    shape_mismatch: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    not_in_model: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No unrecognised source key, no shape mismatch, nothing the model does not have."""
        return not (self.unrecognised or self.shape_mismatch or self.not_in_model)

    def check_target(self, converted: Mapping[str, Tensor], target_shapes: Mapping[str, Sequence[int]],
                     init_reasons: Sequence[Tuple[str, str]] = ()) -> None:
        """Compare the converted tensors with the target model's state (key -> shape).

        Args:
            converted: the converted state dict.
            target_shapes: the target model's ``state_dict()`` shapes.
            init_reasons: ``(regex, reason)`` pairs explaining target keys the source cannot fill; a missing key
                that none explains is reported as "not in this checkpoint".
        """
        self.not_in_model = sorted(set(converted) - set(target_shapes))
        self.shape_mismatch = [(key, tuple(target_shapes[key]), tuple(converted[key].shape))
                               for key in sorted(set(converted) & set(target_shapes))
                               if tuple(target_shapes[key]) != tuple(converted[key].shape)]
        for key in sorted(set(target_shapes) - set(converted)):
            reason = next((why for pattern, why in init_reasons if re.match(pattern, key)),
                          'not in this checkpoint')
            self.left_at_init[key] = reason

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return dict(source=self.source, ok=self.ok, mapped=self.mapped, transformed=self.transformed,
                    dropped=self.dropped, unrecognised=self.unrecognised, left_at_init=self.left_at_init,
                    shape_mismatch=[list(m) for m in self.shape_mismatch], not_in_model=self.not_in_model)

    def to_text(self) -> str:
        """A readable summary: counts, then the dropped and left-at-init keys grouped by reason."""
        lines = [f'{self.source} -> nexusflow: {len(self.mapped)} tensors mapped ({len(self.transformed)} with '
                 f'changed values), {len(self.dropped)} dropped, {len(self.left_at_init)} target tensors left at '
                 f'init, {len(self.unrecognised)} unrecognised, {len(self.shape_mismatch)} shape mismatches, '
                 f'{len(self.not_in_model)} not in the model']
        for title, table in (('changed values', self.transformed), ('dropped (source)', self.dropped),
                             ('left at init (target)', self.left_at_init)):
            if table:
                lines.append(f'{title}:')
                lines += _grouped(table)
        for title, keys in (('UNRECOGNISED source keys', self.unrecognised),
                            ('NOT IN MODEL', self.not_in_model)):
            if keys:
                lines.append(f'{title}: ' + ', '.join(keys[:20]) + (' ...' if len(keys) > 20 else ''))
        for key, model_shape, ckpt_shape in self.shape_mismatch[:20]:
            lines.append(f'SHAPE MISMATCH {key}: model {model_shape} vs converted {ckpt_shape}')
        return '\n'.join(lines)


def _grouped(table: Mapping[str, str]) -> List[str]:
    """``  reason: n keys, e.g. first_key`` lines, one per distinct reason."""
    by_reason: Dict[str, List[str]] = {}
    for key, reason in table.items():
        by_reason.setdefault(reason, []).append(key)
    return [f'  {reason}: {len(keys)} tensors, e.g. {keys[0]}' for reason, keys in by_reason.items()]


def apply_rules(state: Mapping[str, Tensor], rules: Sequence[Rule], source: str,
                transforms: Mapping[str, Callable[[str, Tensor, Mapping[str, Tensor]], Tensor]]
                ) -> Tuple[Dict[str, Tensor], ConversionReport]:
    """Rename (and transform) every tensor of ``state`` by the first matching rule.

    Args:
        state: source state dict.
        rules: ordered rules.
        source: name of the source layout, for the report.
        transforms: transform name -> ``fn(source_key, tensor, state) -> tensor``.

    Returns:
        the converted state dict and the report (``check_target`` not yet run).
    """
    compiled = [(re.compile(rule.pattern), rule) for rule in rules]
    converted: Dict[str, Tensor] = {}
    report = ConversionReport(source=source)
    for key, tensor in state.items():
        match = next(((m, rule) for regex, rule in compiled for m in [regex.fullmatch(key)] if m), None)
        if match is None:
            report.unrecognised.append(key)
            continue
        found, rule = match
        if rule.target is None:
            report.dropped[key] = rule.reason
            continue
        target = found.expand(rule.target)
        if target in converted:
            raise ConversionError(f'two source keys map to {target} (the second is {key}); the rules are wrong')
        if rule.transform is not None:
            tensor = transforms[rule.transform](key, tensor, state)
            report.transformed[target] = rule.reason
        converted[target] = tensor
        report.mapped[target] = key
    return converted, report
