"""Who is using this browser session: the owner of its training job and of the models it saves.

- With Streamlit's authentication turned on (`st.login`), a signed-in user is their account.
- Otherwise each browser gets a random token, kept client-side by a tiny component of the app's
  own: in the browser's local storage, and in a same-site cookie, so the server knows it from the
  first run of the next visit (a reload included). A first visit starts with a token the server
  makes, which the component adopts; a browser that already has one reports it instead. Where no
  component can run (JavaScript off, or AppTest), the token lasts for the session. It is never
  shown in a URL.

Files and the job board record a one-way hash of the identity (`Owner.id`), never the token, so a
downloaded checkpoint cannot be used to pose as its owner. An admin (a token set in the server's
environment, `VAEVIZ_ADMIN_TOKEN`, or `st.secrets["admin_token"]`, typed into the Model zoo) may
delete anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

import streamlit as st

COOKIE = "vaeviz_owner"
TOKEN = re.compile(r"[0-9a-f]{32}")
REPORTED = "vaeviz_owner_token"  # session_state: the token the browser reported this session
ADMIN = "vaeviz_admin"  # session_state: True once this session has given the admin token

_JS = """
export default function owner({ data, setStateValue }) {
  const KEY = "vaeviz-owner";
  const valid = (t) => typeof t === "string" && /^[0-9a-f]{32}$/.test(t);
  let token = null;
  try { token = window.localStorage.getItem(KEY); } catch (e) { token = null; }
  if (!valid(token)) {
    token = data && valid(data.known) ? data.known : null;  // a first visit adopts the server's token
    if (!token) return;
    try { window.localStorage.setItem(KEY, token); } catch (e) { /* private mode: this tab only */ }
  }
  document.cookie = `vaeviz_owner=${token}; path=/; max-age=31536000; SameSite=Strict`;
  if (!data || data.known !== token) setStateValue("token", token);
}
"""
_COMPONENT = st.components.v2.component("vaeviz_owner", js=_JS)


@dataclass(frozen=True)
class Owner:
    id: str  # a one-way hash: what files and the job board record
    name: str  # for people: an account's name, or "this browser"


def _hashed(kind: str, value: str) -> str:
    return hashlib.sha256(f"vaeviz-owner:{kind}:{value}".encode()).hexdigest()[:24]


def browser_owner(token: str) -> Owner:
    """The owner a browser token stands for."""
    return Owner(_hashed("browser", token), "this browser")


def _signed_in() -> Owner | None:
    try:
        user = st.user
        if not user.get("is_logged_in"):
            return None
        who = str(user.get("email") or user.get("sub") or user.get("name") or "")
    except Exception:  # no authentication configured
        return None
    return Owner(_hashed("user", who), who) if who else None


def _token() -> str:
    """This session's browser token: as reported, else from the cookie, else a new one."""
    token = st.session_state.get(REPORTED)
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        cookie = st.context.cookies.get(COOKIE)
        token = cookie if isinstance(cookie, str) and TOKEN.fullmatch(cookie) else secrets.token_hex(16)
        st.session_state[REPORTED] = token
    return token


def mount() -> None:
    """Put the token component on the page (it draws nothing); call once per run, from the sidebar."""
    if _signed_in() is not None:
        return
    result = _COMPONENT(key="vaeviz_owner_component", data={"known": _token()}, height=0)
    token = result.get("token") if result is not None else None
    if isinstance(token, str) and TOKEN.fullmatch(token):
        st.session_state[REPORTED] = token  # the browser already had an identity: it wins


def owner() -> Owner:
    """This session's owner: the signed-in user, else this browser."""
    return _signed_in() or browser_owner(_token())


def admin_token() -> str | None:
    """The server's admin token, if one is set."""
    token = os.environ.get("VAEVIZ_ADMIN_TOKEN", "").strip()
    if not token:
        try:
            token = str(st.secrets.get("admin_token", "") or "").strip()
        except Exception:  # no secrets file
            token = ""
    return token or None


def is_admin() -> bool:
    return bool(st.session_state.get(ADMIN)) and admin_token() is not None


def claim_admin(given: str) -> bool:
    """Compare a typed token with the server's in constant time; remember a match for the session."""
    token = admin_token()
    ok = token is not None and hmac.compare_digest(given.strip().encode(), token.encode())
    st.session_state[ADMIN] = ok
    return ok


def admin_panel() -> None:
    """Where the admin (who knows the server's VAEVIZ_ADMIN_TOKEN) unlocks deleting any saved model."""
    if admin_token() is None:
        return
    with st.expander("Admin" + (" (signed in)" if is_admin() else "")):
        if is_admin():
            st.caption("You may delete any saved model this session.")
            return
        given = st.text_input("Admin token", type="password", key="zoo_admin_token")
        if given and not claim_admin(given):
            st.error("That is not this server's admin token.")
        elif given:
            st.rerun()
