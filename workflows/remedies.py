"""The remedies the playbook names, each an item with its own rules (part of the public contract)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from workflows.basics import Contract, Count, Line, Note, Text
from workflows.money import Money

# ---------------------------------------------------------------- remedies
#
# Each remedy the playbook names is an item with its own rules. How an item
# is delivered (``delivery``) decides which activity the engine runs:
#   refund      money back through Stripe, automatic
#   coupon      a Stripe coupon with a deterministic id, automatic
#   billing     a signed work order to the billing backend, done when it answers 2xx
#   work_order  a signed work order to the backend that does the work, done
#               when that backend (or an agent) calls ``confirm_fulfilment``
#   note        words only (a gift note), delivered with the notices


def _share(total: int, percent: int) -> int:
    return (total * percent + 50) // 100  # half up, in minor units


class RemedyItemBase(Contract):
    delivery: ClassVar[str]

    def refund_amount(self) -> int:
        """Money back to the payment: counted against what was paid."""
        return 0

    def value(self, paid: Money) -> int:
        """What the item is worth in the order's minor units: counted against approval limits."""
        return self.refund_amount()

    def moneys(self) -> list[tuple[str, Money]]:
        """(field, money) pairs that must be in the order's currency."""
        return []

    def describe(self) -> str:
        raise NotImplementedError


class RefundItem(RemedyItemBase):
    """Money back through the payment system; several partial refunds may add up to the amount paid."""

    delivery: ClassVar[str] = "refund"
    kind: Literal["refund"] = "refund"
    amount: Money
    reason: Line = "service recovery"

    def refund_amount(self) -> int:
        return self.amount.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount", self.amount)]

    def describe(self) -> str:
        return f"a refund of {self.amount}"


class CouponItem(RemedyItemBase):
    """A coupon for a smaller grievance: an amount or a percentage off, valid for a while."""

    delivery: ClassVar[str] = "coupon"
    kind: Literal["coupon"] = "coupon"
    amount_off: Money | None = None
    percent_off: Count | None = Field(default=None, ge=1, le=100)
    valid_for_days: Count = Field(default=365, ge=1, le=3660)

    @model_validator(mode="after")
    def _one_discount(self) -> CouponItem:
        if (self.amount_off is None) == (self.percent_off is None):
            raise ValueError("give exactly one of amount_off or percent_off")
        return self

    def value(self, paid: Money) -> int:
        return self.amount_off.amount if self.amount_off else _share(paid.amount, self.percent_off or 0)

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount_off", self.amount_off)] if self.amount_off else []

    def describe(self) -> str:
        off = str(self.amount_off) if self.amount_off else f"{self.percent_off}%"
        return f"a coupon for {off} off your next order, valid for {self.valid_for_days} days"


class WaiveBalanceItem(RemedyItemBase):
    """Waive what the customer still owes (a signed work order to the billing backend)."""

    delivery: ClassVar[str] = "billing"
    kind: Literal["waive_balance"] = "waive_balance"
    amount: Money
    invoice_reference: Line

    def value(self, paid: Money) -> int:
        return self.amount.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount", self.amount)]

    def describe(self) -> str:
        return f"we waive the {self.amount} still outstanding on invoice {self.invoice_reference}"


WorkKind = Literal["redo", "replacement", "late_delivery", "upgrade"]


class WorkItem(RemedyItemBase):
    """Work another system must do (a signed work order) and confirm with ``confirm_fulfilment``.

    ``upgrade`` is an upgrade at no extra cost; ``late_delivery`` delivers
    what was ordered after all.
    """

    delivery: ClassVar[str] = "work_order"
    kind: WorkKind
    description: Text

    def describe(self) -> str:
        label = {"redo": "we redo the work", "replacement": "a replacement", "late_delivery": "delivery of your order",
                 "upgrade": "an upgrade at no extra cost"}[self.kind]
        return f"{label}: {self.description}"


class SplitCostItem(RemedyItemBase):
    """Shared responsibility, shared cost: we pay our share of a stated cost, as a refund or a coupon."""

    kind: Literal["split_cost"] = "split_cost"
    cost: Money
    our_share_percent: Count = Field(ge=1, le=100)
    paid_as: Literal["refund", "coupon"] = "refund"
    description: Text

    @property
    def delivery(self) -> str:  # type: ignore[override]
        return self.paid_as

    @property
    def share(self) -> Money:
        return Money(amount=max(_share(self.cost.amount, self.our_share_percent), 1), currency=self.cost.currency)

    def refund_amount(self) -> int:
        return self.share.amount if self.paid_as == "refund" else 0

    def value(self, paid: Money) -> int:
        return self.share.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("cost", self.cost)]

    def describe(self) -> str:
        how = "a refund" if self.paid_as == "refund" else "a coupon"
        return f"we pay {self.our_share_percent}% of {self.description} ({self.cost}): {self.share} as {how}"


class GiftItem(RemedyItemBase):
    """A goodwill gift: a coupon, a note, or both."""

    kind: Literal["gift"] = "gift"
    coupon_amount: Money | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _something(self) -> GiftItem:
        if self.coupon_amount is None and self.note is None:
            raise ValueError("a gift needs a coupon_amount, a note, or both")
        return self

    @property
    def delivery(self) -> str:  # type: ignore[override]
        return "coupon" if self.coupon_amount else "note"

    def value(self, paid: Money) -> int:
        return self.coupon_amount.amount if self.coupon_amount else 0

    def moneys(self) -> list[tuple[str, Money]]:
        return [("coupon_amount", self.coupon_amount)] if self.coupon_amount else []

    def describe(self) -> str:
        parts = []
        if self.coupon_amount:
            parts.append(f"a gift voucher worth {self.coupon_amount}")
        if self.note:
            parts.append(self.note)
        return "a small gift from us: " + "; ".join(parts)


RemedyItem = Annotated[
    RefundItem | CouponItem | WaiveBalanceItem | WorkItem | SplitCostItem | GiftItem,
    Field(discriminator="kind"),
]
