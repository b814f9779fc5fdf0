"""Connexion's `token_info` dict <-> the Principal it stands for (a leaf module: no HTTP-layer imports).

Returned by the security functions (auth.bearer_info / cookie_info) and read back by the admission
middleware and the handlers' context: {"sub": user_id, "uid": user_id, "tenant_id": ..., "scope": [sorted
scopes], "jti": ...}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.adapters.tokens import Principal


def token_info_of(principal: Principal) -> dict[str, Any]:
    return {
        "sub": principal.user_id,
        "uid": principal.user_id,
        "tenant_id": principal.tenant_id,
        "scope": sorted(principal.scopes),
        "jti": principal.token_id,
    }


def scope_token_info(scope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The token_info Connexion's security layer put on an ASGI request scope; None for a public operation, or
    one whose optional token was absent (Connexion then records {})."""
    info = ((scope.get("extensions") or {}).get("connexion_context") or {}).get("token_info")
    return info if isinstance(info, dict) and info else None


def principal_from_token_info(token_info: dict[str, Any]) -> Principal:
    return Principal(
        user_id=token_info["sub"],
        tenant_id=token_info["tenant_id"],
        scopes=frozenset(token_info.get("scope") or ()),
        token_id=token_info.get("jti"),
    )
