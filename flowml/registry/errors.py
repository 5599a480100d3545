"""Errors a promotion raises when it is refused: typed, with the facts attached.

::

    InvalidState (flowml.exceptions)
    └── PromotionRefused        a gate failed
        └── ApprovalRejected    a reviewer said no, or nobody answered in time
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowml.exceptions import InvalidState

if TYPE_CHECKING:
    from flowml.registry.gates import GateResult

__all__ = ["ApprovalRejected", "PromotionRefused"]


class PromotionRefused(InvalidState):
    """A promotion did not happen because a gate failed.

    Attributes:
        name: the registered model.
        version: the candidate version.
        target: the stage or alias it was to be promoted to.
        results: every gate's result (the failed ones say why).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        version: int,
        target: str,
        results: list[GateResult] | None = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.version = version
        self.target = target
        self.results = list(results or [])


class ApprovalRejected(PromotionRefused):
    """A promotion awaiting approval was rejected, or the approval timed out.

    Attributes:
        comment: the reviewer's comment (empty on timeout).
        timed_out: nobody answered before the timeout.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        version: int,
        target: str,
        comment: str = "",
        timed_out: bool = False,
        results: list[GateResult] | None = None,
    ) -> None:
        super().__init__(message, name=name, version=version, target=target, results=results)
        self.comment = comment
        self.timed_out = timed_out
