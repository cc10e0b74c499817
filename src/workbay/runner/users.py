"""The user ``work``: passwd/group/shadow entries, home, sudo."""

from __future__ import annotations

import os
from typing import List, Optional


def _read_lines(path: str) -> List[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _write_lines(path: str, lines: List[str], mode: int = 0o644) -> None:
    tmp = path + ".workbay-tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def upsert_entry(lines: List[str], name: str, entry: str) -> List[str]:
    """Replace the line of ``name`` (first field) or append ``entry``."""
    out, found = [], False
    for line in lines:
        if line.split(":", 1)[0] == name:
            if not found:
                out.append(entry)
                found = True
            continue
        out.append(line)
    if not found:
        out.append(entry)
    return out


def group_name_for(lines: List[str], gid: int) -> Optional[str]:
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[2] == str(gid):
            return parts[0]
    return None


def ensure_user(name: str, uid: int, gid: int, home: str, shell: str,
                supplementary_gids: Optional[List[int]] = None, etc: str = "/etc") -> str:
    """Create or update user ``name`` with ``uid``/``gid``; returns its primary group's name.

    A gid already used by another group is reused as the primary group (duplicate uids are
    allowed in passwd, so an image's own uid-1000 user does not get in the way).
    """
    group_path, passwd_path, shadow_path = (os.path.join(etc, f) for f in
                                            ("group", "passwd", "shadow"))
    groups = _read_lines(group_path)
    gname = group_name_for(groups, gid)
    if gname is None or gname == name:
        gname = name
        groups = upsert_entry(groups, name, f"{name}:x:{gid}:")
    for extra in supplementary_gids or []:
        if group_name_for(groups, extra) is None:
            groups.append(f"{name}{extra}:x:{extra}:{name}")
        else:
            groups = [_add_member(line, name) if line.split(":")[2:3] == [str(extra)] else line
                      for line in groups]
    _write_lines(group_path, groups)
    passwd = upsert_entry(_read_lines(passwd_path), name,
                          f"{name}:x:{uid}:{gid}:Workbay user:{home}:{shell}")
    _write_lines(passwd_path, passwd)
    if os.path.exists(shadow_path):
        # "*": no password login, but sshd (UsePAM no) still accepts keys; "!" would lock it.
        shadow = upsert_entry(_read_lines(shadow_path), name, f"{name}:*:19000:0:99999:7:::")
        _write_lines(shadow_path, shadow, 0o640)
    return gname


def _add_member(line: str, name: str) -> str:
    parts = line.split(":")
    if len(parts) < 4:
        parts += [""] * (4 - len(parts))
    members = [m for m in parts[3].split(",") if m]
    if name not in members:
        members.append(name)
    parts[3] = ",".join(members)
    return ":".join(parts)


def enable_sudo(name: str, etc: str = "/etc") -> bool:
    """Passwordless sudo for ``name`` (only called when the user's sudo flag is on)."""
    d = os.path.join(etc, "sudoers.d")
    os.makedirs(d, mode=0o750, exist_ok=True)
    path = os.path.join(d, "01-workbay-" + name)
    with open(path, "w") as f:
        f.write(f"{name} ALL=(ALL:ALL) NOPASSWD:ALL\n")
    os.chmod(path, 0o440)
    return True


def chown_tree(path: str, uid: int, gid: int, limit: int = 10000) -> None:
    """chown ``path`` and (up to ``limit`` entries of) what is below it."""
    n = 0
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for entry in dirs + files:
            p = os.path.join(root, entry)
            try:
                os.lchown(p, uid, gid)
            except OSError:
                pass
            n += 1
            if n >= limit:
                return
