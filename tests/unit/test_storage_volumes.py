"""Storage-proxy: volumes, folder layout, usage and quota bookkeeping."""

from __future__ import annotations

import uuid

import pytest

from workbay.common.config import load_config
from workbay.storage.errors import QuotaExceeded, QuotaUnsupported
from workbay.storage.quota import parse_scope
from workbay.storage.tus import check_quota
from workbay.storage.volumes import Volume, Volumes, XfsVolume


def test_default_volume_and_layout(tmp_path):
    vols = Volumes(load_config(data_dir=tmp_path))
    vol = vols.get("local:volume1")
    assert vols.get("volume1") is vol and vol.root == (tmp_path / "volumes" / "volume1").resolve()
    scope = parse_scope(f"user:{uuid.UUID(int=1)}")
    vfid = uuid.uuid4().hex
    path = vol.create_folder(scope, vfid)
    assert path == vol.root / "user" / str(uuid.UUID(int=1)) / vfid
    assert vol.find_folder(vfid) == path and vol.folder_scope(path) == scope
    (path / "a").write_bytes(b"x" * 100)
    (path / "d").mkdir()
    (path / "d" / "b").write_bytes(b"y" * 23)
    assert vol.folder_usage(vfid) == {"used_bytes": 123, "file_count": 2}
    usage = vol.usage()
    assert usage["total"] > 0 and 0 <= usage["percentage"] <= 100


def test_vfs_quota_check(tmp_path):
    vol = Volume("v", tmp_path / "v")
    scope = parse_scope(f"project:{uuid.UUID(int=2)}")
    folder = vol.create_folder(scope, uuid.uuid4().hex)
    (folder / "f").write_bytes(b"z" * 60)
    check_quota(vol, folder, 10**9)  # no limit
    vol.set_quota(scope, 100)
    assert vol.get_quota(scope)["limit_bytes"] == 100 and vol.get_quota(scope)["used_bytes"] == 60
    check_quota(vol, folder, 40)
    with pytest.raises(QuotaExceeded):
        check_quota(vol, folder, 41)
    vol.unset_quota(scope)
    assert vol.get_quota(scope)["limit_bytes"] is None


def test_xfs_without_project_quotas_reports_unsupported(tmp_path):
    vol = XfsVolume("x", tmp_path / "x", runner=lambda argv: (0, "ext2/ext3\n"))
    assert not vol.quota_supported and vol.capabilities == ["vfolder"]
    scope = parse_scope(f"user:{uuid.UUID(int=3)}")
    with pytest.raises(QuotaUnsupported):
        vol.set_quota(scope, 10)
    assert vol.get_quota(scope)["supported"] is False


def test_xfs_with_project_quotas_drives_xfs_quota(tmp_path):
    calls: list[list[str]] = []

    def runner(argv):
        calls.append(argv)
        if argv[0] == "stat":
            return 0, "xfs\n"
        return 0, "Project quota state on /\n  Accounting: ON\n  Enforcement: ON\n"

    vol = XfsVolume("x", tmp_path / "x", runner=runner)
    assert vol.quota_supported and "quota" in vol.capabilities
    scope = parse_scope(f"user:{uuid.UUID(int=4)}")
    vol.set_quota(scope, 1 << 20)
    pid = vol.project_id(scope)
    cmds = [c[3] for c in calls if c[0] == "xfs_quota"]
    assert f"project -s -p {vol.scope_dir(scope)} {pid}" in cmds
    assert f"limit -p bhard={1 << 20} {pid}" in cmds
    vol.unset_quota(scope)
    assert [c[3] for c in calls][-1] == f"limit -p bhard=0 {pid}"
    assert vol.project_id(parse_scope(f"user:{uuid.UUID(int=5)}")) == pid + 1


def test_stale_uploads_are_dropped(tmp_path):
    import os
    import time

    from workbay.storage.tus import drop_stale

    vol = Volume("v", tmp_path / "v")
    old, fresh = vol.upload_dir / "old", vol.upload_dir / "fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    past = time.time() - 2 * 24 * 3600
    os.utime(old, (past, past))
    drop_stale(vol)
    assert sorted(p.name for p in vol.upload_dir.iterdir()) == ["fresh"]
