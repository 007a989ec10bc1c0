"""The OpenAPI 3.1 description of the counter API, served at /api/v1/openapi.json."""

from ..errors import MAX_ID


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


COMMON = {
    "401": _error("Not signed in (checked first)."),
    "403": _error(
        "A villager, an admin without a venue, a clerk without a venue, or another village's "
        "card (`other_village`)."
    ),
    "400": _error(
        "The X-CSRFToken header is missing or wrong (checked after the sign-in), or the body is "
        "JSON nested too deeply (`bad_json`)."
    ),
}
MAX_INT = MAX_ID  # an id beyond what its column holds is refused (422) or not found (404)
# Text holds no NUL (it cannot be stored) and a code is not only spaces: what Python's strip()
# takes away, which is JSON Schema's \s and also the separators U+001C-U+001F and U+0085.
TEXT = "^[^\\u0000]*$"
CODE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 300,
    "pattern": "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$",
}
TOO_MANY_CODES = _error(
    "Too many codes that did not work at this counter (`too_many_codes`): a typed pay code "
    "number is not looked up while the clerk's or the counter's budget of failures is spent. "
    "Scanned QR codes still work."
)

SECURITY = [{"session": [], "csrf": []}]


def document(server: str) -> dict:
    from ..offline import openapi as offline

    doc = _document(server)
    doc["paths"].update(offline.PATHS)
    doc["components"]["schemas"] = {**SCHEMAS, **offline.SCHEMAS}
    return doc


def _document(server: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Village Points counter API",
            "version": "1",
            "description": (
                "The API the counter page uses; a handheld terminal or a WeChat mini-program "
                "may use it too. Sign in with POST /login (form fields username, password, "
                "csrf_token) to get the session cookie; send the CSRF token (the counter page's "
                "`<meta name=csrf-token>`) in the `X-CSRFToken` header with every POST. "
                "Errors are `{error, message}`; `message` is in the user's language."
            ),
        },
        "servers": [{"url": server}],
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
            "schemas": SCHEMAS,
        },
        "security": SECURITY,
        "paths": {
            "/api/v1/counter/items": {
                "get": {
                    "summary": "Active items of the clerk's venue",
                    "security": [{"session": []}],  # a GET needs no CSRF token
                    "responses": {"200": _json("ItemList", "The items."), **COMMON},
                }
            },
            "/api/v1/counter/lookup": {
                "post": {
                    "summary": "Read a scanned code: card token, pay code, /q/ URL or number",
                    "description": (
                        "A pay code is accepted for about 60 s after the phone showed it; a "
                        "lookup records it, and it is then accepted for 5 more minutes while the "
                        "clerk picks items. An unknown, expired, used or another village's pay "
                        "code all answer 404 `code_unknown`."
                    ),
                    "requestBody": _body(
                        {
                            "type": "object",
                            "required": ["code"],
                            "properties": {"code": CODE},
                            "additionalProperties": False,
                        }
                    ),
                    "responses": {
                        "200": _json("Lookup", "The household and, for a pay code, the resident."),
                        "404": _error("Not a valid code here (`code_unknown`)."),
                        "410": _error("A replaced card (`card_replaced`)."),
                        "422": _error("Malformed input."),
                        "429": TOO_MANY_CODES,
                        **COMMON,
                    },
                }
            },
            "/api/v1/counter/redemptions": {
                "post": {
                    "summary": "Redeem items for a household",
                    "description": (
                        "One transaction: the whole batch is checked against the balance, stock, "
                        "meal limits and the card's daily cap. The same `request_id` with the "
                        "same body again returns the first redemption (header "
                        "`Idempotent-Replayed: true`), even though its pay code is used up by "
                        "then; with another body it is refused (409 `request_id_reused`)."
                    ),
                    "requestBody": _body({"$ref": "#/components/schemas/RedemptionRequest"}),
                    "responses": {
                        "201": _json("Redemption", "Recorded (or replayed)."),
                        "404": _error("Not a valid code here (`code_unknown`)."),
                        "409": _error(
                            "Not enough points (`insufficient_points`), not enough stock "
                            "(`out_of_stock`), a meal limit reached (`meal_limit`), the card's "
                            "daily cap reached (`card_daily_cap`), an archived household, a "
                            "household without a PIN (`pin_not_set`), a `request_id` already "
                            "used with another body (`request_id_reused`)."
                        ),
                        "410": _error("A replaced card (`card_replaced`)."),
                        "422": _error(
                            "Malformed input: lines, qty, request_id, an item not of this venue, "
                            "no resident chosen for a card, a missing PIN (`pin_required`)."
                        ),
                        "429": _error(
                            "Too many wrong PINs for this card (`pin_locked`; `wrong_pin` is "
                            "403), or too many codes that did not work (`too_many_codes`)."
                        ),
                        **COMMON,
                    },
                }
            },
            "/api/v1/counter/redemptions/{id}/void": {
                "post": {
                    "summary": "Void a redemption: points come back (a reversal entry), and stock",
                    "description": "A clerk: today's redemptions of the own venue. An admin: any.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                        }
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "reason": {
                                            "type": "string",
                                            "maxLength": 200,
                                            "pattern": TEXT,
                                        }
                                    },
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json("Voided", "Voided."),
                        "404": _error("No such redemption in this village."),
                        "409": _error("Already voided (`already_voided`)."),
                        "422": _error("`reason` is not a text, or is too long."),
                        **COMMON,
                    },
                }
            },
            "/api/v1/counter/decode": {
                "post": {
                    "summary": "Decode a QR code in a photo (for phones without a live decoder)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["photo"],
                                    "properties": {"photo": {"type": "string", "format": "binary"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The code's text; pass it to lookup.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"code": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "422": _error("Not an image, or no QR code found."),
                        **COMMON,
                    },
                }
            },
        },
    }


_HOUSEHOLD = {
    "type": "object",
    "properties": {
        "public_id": {"type": "string"},
        "number": {"type": "string"},
        "head": {"type": "string"},
        "balance": {"type": "integer"},
        "stars": {"type": "integer"},
    },
}
_RESIDENT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prices": {
            "type": "object",
            "description": "Meal prices for this resident by item id (age tiers applied).",
            "additionalProperties": {"type": "integer"},
        },
    },
}
SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    },
    "Item": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "points": {"type": "integer"},
            "stock": {"type": ["integer", "null"], "description": "null for meals"},
            "slot": {"type": ["string", "null"], "enum": ["breakfast", "lunch", "dinner", None]},
            "unit": {"type": "string"},
            "low": {"type": "boolean"},
        },
    },
    "ItemList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}},
    },
    "Lookup": {
        "type": "object",
        "properties": {
            "household": _HOUSEHOLD,
            "resident": {"oneOf": [_RESIDENT, {"type": "null"}]},
            "residents": {
                "type": "array",
                "items": _RESIDENT,
                "description": "For a card: the members to choose who takes the goods.",
            },
            "source": {"type": "string", "enum": ["card", "paycode"]},
            "pin_required": {"type": "boolean"},
            "code": {
                "type": "string",
                "description": (
                    "The code as a signed token: send it with the redemption (a pay code's "
                    "number typed once is then not counted as a guess again)."
                ),
            },
        },
    },
    "RedemptionRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "lines", "request_id"],
        "properties": {
            "code": CODE,
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["item_id", "qty"],
                    "properties": {
                        "item_id": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 99},
                    },
                },
            },
            "request_id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{8,64}$",
                "description": "Made by the client once per redemption (e.g. a UUID).",
            },
            "resident_id": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_INT,
                "description": "For a card: who takes the goods (not needed for one member).",
            },
            "pin": {"type": "string", "pattern": "^[0-9]{4}$"},
        },
    },
    "Redemption": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "total": {"type": "integer"},
            "balance_after": {"type": "integer"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "item_id": {"type": "integer"},
                        "name": {"type": "string"},
                        "qty": {"type": "integer"},
                        "points": {"type": "integer"},
                        "subtotal": {"type": "integer"},
                    },
                },
            },
            "household": _HOUSEHOLD,
            "resident": _RESIDENT,
            "venue": {"type": "string"},
            "source": {"type": "string"},
            "request_id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "voided": {"type": "boolean"},
        },
    },
    "Voided": {
        "allOf": [
            {"$ref": "#/components/schemas/Redemption"},
            {
                "type": "object",
                "properties": {
                    "reversal": {
                        "type": "object",
                        "properties": {
                            "entry_id": {"type": ["integer", "null"]},
                            "points": {"type": "integer"},
                            "balance_after": {"type": "integer"},
                        },
                    }
                },
            },
        ]
    },
}
