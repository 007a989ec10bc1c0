"""The offline counter's part of the OpenAPI document (merged by app/store/openapi.py)."""

from ..store.openapi import CODE, COMMON, MAX_INT, TEXT, _body, _error, _json
from .models import CONFLICT_REASONS

_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code", "lines", "request_id", "resident_id", "receipt_no", "occurred_at"],
    "properties": {
        "code": {**CODE, "description": "The household card as scanned (pay codes: online only)."},
        "lines": {"$ref": "#/components/schemas/RedemptionRequest/properties/lines"},
        "request_id": {"$ref": "#/components/schemas/RedemptionRequest/properties/request_id"},
        "resident_id": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
        "receipt_no": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$",
            "description": "The receipt number the counter printed offline.",
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the clerk confirmed it on the device (not in the future).",
        },
        "list": {
            "type": "string",
            "maxLength": 300,
            "pattern": TEXT,
            "description": "The `list` of the offline list the counter used.",
        },
    },
}

SCHEMAS = {
    "OfflineList": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "why_off": {"type": ["string", "null"]},
            "cap": {"type": "integer"},
            "issued_at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date", "description": "the village's day"},
            "utc_offset": {"type": "integer", "description": "the village's day's offset, min"},
            "list": {"type": "string"},
            "csrf": {"type": "string"},
            "venue": {"type": "object"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "a meal has a `slot` and a `limit` per resident per day",
                },
            },
            "households": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "card": {"type": "string", "description": "SHA-256 of the card token"},
                        "public_id": {"type": "string"},
                        "number": {"type": "string"},
                        "head": {"type": "string"},
                        "balance": {"type": "integer"},
                        "allowance": {
                            "type": "integer",
                            "description": "the least of the balance and what is left today of "
                            "the offline cap and of the card's daily cap",
                        },
                        "residents": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "description": "id, name, meal prices, `meals`: {slot: meals "
                                "of it had today}",
                            },
                        },
                    },
                },
            },
        },
    },
    "OfflineRedemptionRequest": _REQUEST,
    "Synced": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["recorded", "conflict"]},
            "receipt_no": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "synced_at": {"type": "string", "format": "date-time"},
            "overdraft": {"type": "integer"},
            "redemption": {
                "oneOf": [{"$ref": "#/components/schemas/Redemption"}, {"type": "null"}]
            },
            "conflict": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "reason": {"type": "string", "enum": list(CONFLICT_REASONS)},
                        },
                    },
                    {"type": "null"},
                ]
            },
        },
    },
}

PATHS = {
    "/api/v1/counter/offline": {
        "get": {
            "summary": "The venue's offline list: items, prices, card hashes, allowances",
            "security": [{"session": []}],
            "responses": {
                "200": _json("OfflineList", "The list, and a fresh CSRF token."),
                **COMMON,
            },
        }
    },
    "/api/v1/counter/offline/redemptions": {
        "post": {
            "summary": "Sync one redemption recorded offline",
            "description": (
                "Recorded exactly once per `request_id` (201; the same again answers 200 with "
                "`Idempotent-Replayed: true`; another body 409 `request_id_reused`). Within the "
                "household's offline allowance it is honoured even below zero (`overdraft`); "
                "beyond it, for a card reissued before the sale, an archived household, "
                "without a valid `list`, beyond the card's daily cap or a meal beyond the "
                "resident's limit for its slot that day it is a conflict for the admin "
                "(`status: conflict`)."
            ),
            "requestBody": _body({"$ref": "#/components/schemas/OfflineRedemptionRequest"}),
            "responses": {
                "201": _json("Synced", "Recorded: honoured or a conflict."),
                "200": _json("Synced", "A replay: the first answer."),
                "404": _error("Not a card of ours (`code_unknown`), or an unknown venue."),
                "409": _error("A `request_id` already used with another body."),
                "422": _error(
                    "Malformed input, a pay code (online only), an item not of this venue, a "
                    "resident not of the household, an impossible `occurred_at`."
                ),
                **COMMON,
            },
        }
    },
}
