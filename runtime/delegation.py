"""How the interpreter's delegate (XNNPACK on CPU) partitioned a model's graph.

The interpreter lists the model's own ops and, after them, one "DELEGATE" node per
partition the delegate took over. Every op outside the partitions runs on the built-in
kernels, and each boundary hands tensors between the two: one partition and no op outside
is the fast case. The view is the interpreter's `_get_ops_details()`, the only op-level
listing its Python API has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DELEGATE_OP = "DELEGATE"


@dataclass
class DelegationReport:
    partitions: int  # DELEGATE nodes
    undelegated_ops: list[str] = field(default_factory=list)  # op names outside them, in order

    @property
    def single(self) -> bool:
        """One partition and nothing outside it."""
        return self.partitions == 1 and not self.undelegated_ops

    def describe(self) -> str:
        if self.single:
            return "1 partition"
        outside = ", ".join(dict.fromkeys(self.undelegated_ops)) or "none"
        noun = "partition" if self.partitions == 1 else "partitions"
        return f"{self.partitions} {noun}; outside: {outside}"


def delegation_report(interpreter: Any) -> DelegationReport | None:
    """The partitions and the ops left outside them; None when the interpreter cannot say."""
    try:
        ops = list(interpreter._get_ops_details())  # noqa: SLF001 - see the module note
    except (AttributeError, RuntimeError, ValueError):
        return None
    delegates = [op for op in ops if op.get("op_name") == DELEGATE_OP]
    plain = [op for op in ops if op.get("op_name") != DELEGATE_OP]
    producer: dict[int, int] = {}
    for index, op in enumerate(plain):
        for tensor in op.get("outputs", []):
            producer[int(tensor)] = index
    covered: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node.get("inputs", [])}
        pending = [int(t) for t in node.get("outputs", [])]
        while pending:
            tensor = pending.pop()
            position = producer.get(tensor)
            if position is None or position in covered or tensor in boundary:
                continue
            covered.add(position)
            pending += [int(t) for t in plain[position].get("inputs", []) if int(t) >= 0]
    outside = [str(op.get("op_name")) for i, op in enumerate(plain) if i not in covered]
    return DelegationReport(partitions=len(delegates), undelegated_ops=outside)
