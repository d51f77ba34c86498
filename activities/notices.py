"""Notices by email: rendered from templates, sent over SMTP with aiosmtplib.

Customer-facing notices speak for the company ("we") and never carry the
name of a member of staff: every form of every name the workflow lists in
``redact`` (``workflows.names``) is replaced by "our team" in the text that
came from inputs (the notice's ``context``: what happened, impact, remedy
descriptions, preventive actions …), never in the template's own words.
The rendered notice is checked once more, over the same input text only
(each value is marked while it is rendered), and one that still names staff
fails at once (``TemplateError``, not retried) so that a human takes over.

Customer notices are written in the customer's language (``activities.language``):
``templates/<language>/<kind>.txt``, with amounts and dates formatted there
from the raw values the workflow passes. Internal notices are in English,
``templates/<kind>.txt``.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError, select_autoescape
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.language import BASE, Language, resolve
from activities.webhooks import WebhookSettings, post
from workflows.inputs import Contact
from workflows.names import NameMatcher, name_pattern, opens_sentence
from workflows.payloads import Notice, WebhookReceipt, WebhookRequest

TEMPLATES = Environment(
    loader=PackageLoader("activities", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
STAND_IN = "our team"


class MailSettings(BaseModel):
    host: str = "localhost"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    # STARTTLS: True requires it, None uses it if the relay offers it (aiosmtplib's default), False never.
    start_tls: bool | None = None
    use_tls: bool = False  # implicit TLS from the first byte (SMTPS, port 465)
    sender: str = "care@example.com"
    company: str = "Amends Demo Co."
    executive: str = "The founders"
    care: Contact = Contact(name="Customer care", email="care@example.com")
    # The customers' language when a report gives none, or one without templates (AMENDS_DEFAULT_LOCALE).
    default_locale: str = BASE


# Context values that are not prose: the customer's own name (a staff member
# may share a given name with the customer: "Dear our team" helps nobody) and
# identifiers the customer quotes back to us.
VERBATIM = frozenset({"customer_name", "order_id", "gift_code"})
# Private-use characters that mark where each input value stands in the
# rendered text, so that the final check reads only what came from inputs.
_OPEN, _CLOSE = "\ue000", "\ue001"
# What stands before text that goes on in mid-sentence while it is redacted: no name, no sentence end.
_MID_SENTENCE = ": "
_MARKED = re.compile(f"{_OPEN}([^{_OPEN}{_CLOSE}]*){_CLOSE}")


def _repeated(stand_in: str) -> re.Pattern[str]:
    s = re.escape(stand_in)
    return re.compile(rf"\b({s})(?:(?:\s+|\s*,\s*|\s+(?:and|und)\s+){s}\b)+", re.IGNORECASE)


def redact(value: Any, pattern: NameMatcher | None, stand_in: str = STAND_IN) -> Any:
    """``value`` (a string, or lists and dicts of them) with every staff name replaced by "our team".

    A stand-in that opens a sentence is capitalised, and names next to each
    other ("Kevin and Rita", "Strauss, Lomax") become one "our team".
    ``stand_in``: the words in the notice's language ("unser Team").
    """
    if pattern is None:
        return value
    if isinstance(value, str):
        return _redacted(value, pattern, stand_in)
    if isinstance(value, list):
        return [redact(v, pattern, stand_in) for v in value]
    if isinstance(value, dict):
        return {k: redact(v, pattern, stand_in) for k, v in value.items()}
    return value


def _redacted(text: str, matcher: NameMatcher, stand_in: str = STAND_IN) -> str:
    if not matcher.search(text):
        return text
    text = matcher.sub(stand_in, text)
    text = _repeated(stand_in).sub(lambda m: m.group(1), text)
    out, last = [], 0
    for m in re.finditer(re.escape(stand_in), text):
        if opens_sentence(text, m.start()):
            out += [text[last:m.start()], stand_in[:1].upper() + stand_in[1:]]
            last = m.end()
    return "".join(out) + text[last:]


def _mark(value: Any) -> Any:
    # Templates read input values as text and test them only for being empty
    # ("{% if gift %}"): an empty value stays empty, so it stays false.
    if isinstance(value, str):
        return f"{_OPEN}{value}{_CLOSE}" if value else value
    if isinstance(value, list):
        return [_mark(v) for v in value]
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    return value


def _from_inputs(text: str) -> list[str]:
    """The pieces of a rendered text that came from the context; all of it if a template broke the marks."""
    pieces = _MARKED.findall(text)
    rest = _MARKED.sub("", text)
    if _OPEN in rest or _CLOSE in rest:
        # A filter split or reordered a value: read the whole text rather than miss a name.
        return [text.replace(_OPEN, " ").replace(_CLOSE, " ")]
    return pieces


def language(notice: Notice, settings: MailSettings) -> Language:
    """The language a notice is written in: the customer's for customer notices, English for staff."""
    if notice.audience != "customer":
        return resolve(BASE)
    return resolve(notice.context.get("locale"), settings.default_locale)


def care_contact(notice: Notice, settings: MailSettings) -> Contact:
    """Who signs a customer notice and receives the customer's reply: the incident's care contact, or the
    care team (AMENDS_CARE_NAME, AMENDS_CARE_EMAIL)."""
    return notice.signer or settings.care


def render(notice: Notice, settings: MailSettings) -> tuple[str, str]:
    """Subject and body of a notice; a template that cannot render is a permanent failure, never retried."""
    try:
        return _render(notice, settings)
    except (TemplateError, ValueError) as err:
        raise ApplicationError(f"{notice.kind} notice cannot be rendered: {err}", type="TemplateError",
                               non_retryable=True) from err


def _render(notice: Notice, settings: MailSettings) -> tuple[str, str]:
    """Subject and body of a notice; the template's first line is ``Subject: …``."""
    context = dict(notice.context)
    context.pop("locale", None)
    matcher = None
    template = f"{notice.kind}.txt"
    if notice.audience == "customer":
        # The full names, their other forms, and each part of two letters or more.
        matcher = name_pattern(notice.redact, min_part=2)

        lang = language(notice, settings)
        stand_in = lang.stand_in(TEMPLATES)

        def prose(value: Any) -> Any:
            return value if matcher is None else _mark(redact(value, matcher, stand_in=stand_in))

        def inline(value: str) -> str:
            # Text that goes on in mid-sentence ("we redo the work: Zoë pitches …") is read as it
            # stands there: a name at its start is not a sentence's first word, nor capitalised.
            if matcher is None or not value:
                return value
            redacted: str = redact(_MID_SENTENCE + value, matcher, stand_in=stand_in)
            assert redacted.startswith(_MID_SENTENCE)
            return str(_mark(redacted.removeprefix(_MID_SENTENCE)))

        # Dates, amounts and remedy items in the customer's words; the text from inputs in them is prose.
        written = lang.values(context, TEMPLATES, prose, inline)
        context = {k: written[k] if k in written else v if k in VERBATIM else prose(v) for k, v in context.items()}
        template = f"{lang.code}/{notice.kind}.txt"
    signer = care_contact(notice, settings)
    text = TEMPLATES.get_template(template).render(
        company=settings.company, executive=settings.executive, signer=signer.signature,
        reply_to=str(signer.email), **context,
    )
    if matcher is not None:
        leak = next((m for piece in _from_inputs(text) if (m := matcher.search(piece))), None)
        text = text.replace(_OPEN, "").replace(_CLOSE, "")
        if leak is not None:
            # Redaction missed a name (or a template rebuilt one): never send it; a human takes over.
            raise ApplicationError(
                f"{notice.kind} notice would name a member of staff ('{leak.name}' in the text from its inputs)",
                type="TemplateError", non_retryable=True)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"template {notice.kind}.txt must start with 'Subject: '")
    subject = first.removeprefix("Subject: ").strip()
    return subject, body.lstrip("\n")


def html_version(subject: str, body: str, lang: str = BASE) -> str:
    """The HTML part: the same words, every one of them escaped by the template."""
    paragraphs = []
    for block in body.strip().split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            paragraphs.append({"bullets": [line[2:] for line in lines], "lines": []})
        else:
            paragraphs.append({"bullets": [], "lines": lines})
    return TEMPLATES.get_template("email.html").render(subject=subject, paragraphs=paragraphs, lang=lang)


class NoticeActivities:
    def __init__(self, settings: MailSettings, webhooks: WebhookSettings | None = None) -> None:
        self.settings = settings
        self.webhooks = webhooks or WebhookSettings()

    @activity.defn(name="post_notice_webhook")
    async def post_notice_webhook(self, notice: Notice) -> WebhookReceipt:
        """The same notice as a signed webhook, for backends that send their own SMS or in-app messages."""
        subject, body = render(notice, self.settings)
        to = notice.to or self.settings.care
        return await post(
            self.webhooks,
            WebhookRequest(
                target="notices",
                event=f"notice.{notice.kind}",
                idempotency_key=notice.message_id,
                payload={
                    "kind": notice.kind,
                    "audience": notice.audience,
                    "to": to.model_dump(mode="json"),
                    "subject": subject,
                    "text": body,
                    "html": html_version(subject, body, language(notice, self.settings).code),
                },
                required=False,
            ),
        )

    @activity.defn(name="send_notice")
    async def send_notice(self, notice: Notice) -> str:
        return await send_email(self.settings, notice)


async def send_email(s: MailSettings, notice: Notice) -> str:
    """Render and send one notice; its Message-ID is stable, so a retried send is recognisable."""
    subject, body = render(notice, s)
    to = notice.to or s.care
    message = EmailMessage()
    message["From"] = formataddr((s.company, s.sender))
    message["To"] = formataddr((to.name, str(to.email)))
    message["Subject"] = subject
    if notice.audience == "customer":
        # A reply reaches a person who looks after the customer, never a no-reply box.
        signer = care_contact(notice, s)
        message["Reply-To"] = formataddr((signer.signature, str(signer.email)))
    domain = s.sender.rpartition("@")[2] or "amends"
    local = re.sub(r"[^A-Za-z0-9._-]", ".", notice.message_id)
    message["Message-ID"] = f"<{local}@{domain}>"
    message["X-Amends-Notice"] = notice.kind
    message["Date"] = format_datetime(activity.info().current_attempt_scheduled_time)
    message.set_content(body)
    message.add_alternative(html_version(subject, body, language(notice, s).code), subtype="html")
    # After the parts: setting content clears the Content-* headers.
    message["Content-Language"] = language(notice, s).code
    try:
        await aiosmtplib.send(
            message,
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            start_tls=s.start_tls,
            use_tls=s.use_tls,
            timeout=20,
        )
    except aiosmtplib.SMTPRecipientsRefused as err:
        raise ApplicationError(f"the mail relay refused {to.email}: {err}", type="MailRejected",
                               non_retryable=True) from err
    except aiosmtplib.SMTPResponseException as err:
        # 5xx is the relay's final answer (a bad address, a rejected message); 4xx may heal.
        if err.code >= 500:
            raise ApplicationError(f"the mail relay refused the message: {err.code} {err.message}",
                                   type="MailRejected", non_retryable=True) from err
        raise
    return str(message["Message-ID"])
