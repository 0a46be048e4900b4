"""Attachments of conversations: photos, stills from calls, call recordings.

``records`` (what an attachment is, the typed refusal), ``images`` (type by content,
limits before decoding, re-encoding), ``storage`` (one interface: a local directory, the
durable store's table), ``service`` (who may, the limits, processing off the loop).
docs/protocol.md#attachments has the contract, docs/security.md#attachments the limits.
"""

from .records import Attachment, AttachmentRefused
from .service import (
    AccessPort,
    AttachmentLimits,
    AttachmentService,
    Caller,
    ConversationAccess,
)
from .storage import (
    AttachmentStorage,
    DatabaseAttachmentStorage,
    LocalAttachmentStorage,
)

__all__ = ["AccessPort", "Attachment", "AttachmentLimits", "AttachmentRefused",
           "AttachmentService", "AttachmentStorage", "Caller", "ConversationAccess",
           "DatabaseAttachmentStorage", "LocalAttachmentStorage"]
