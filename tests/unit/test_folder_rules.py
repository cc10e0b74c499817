"""folder_rules.allowed_actions: what a caller may do with a folder, decided without I/O."""

from __future__ import annotations

import pytest

from workbay.common.domain import FOLDER_TRASH_STATUSES, FolderUsageMode
from workbay.common.errors import InvalidAPIParameters
from workbay.manager.services import folder_rules as rules
from workbay.manager.services.folder_rules import FolderAction as A


def acts(**kw) -> set[str]:
    args = {"permission": "wd", "shared_with_caller": False, "caller_owns": True, "caller_is_admin": False,
            "ownership_type": "user", "status": "ready", "cloneable": False, "host_permissions": None, **kw}
    found = rules.allowed_actions(**args)
    assert found == sorted(found)
    return {str(a) for a in found}


def test_owner_may_do_everything_but_leave_and_share():
    assert acts() == {str(a) for a in A} - {"leave", "share", "restore", "purge"}


@pytest.mark.parametrize("status", [s for s in FOLDER_TRASH_STATUSES if s != "delete-pending"] + ["cloning"])
def test_folders_being_worked_on_offer_nothing(status):
    assert acts(status=status) == set()


def test_trash_offers_restore_and_purge_to_its_managers_only():
    assert acts(status="delete-pending") == {"restore", "purge"}
    assert acts(status="delete-pending", permission="rw", caller_owns=False, shared_with_caller=True) == set()


def test_shares_never_manage_the_folder():
    assert acts(permission="rw", caller_owns=False, shared_with_caller=True) == {
        "download", "leave", "mkdir", "upload", "rename_file", "move_file", "delete_files"}
    assert acts(permission="ro", caller_owns=False, shared_with_caller=True, cloneable=True) == {
        "download", "leave", "clone"}
    assert acts(permission=None, caller_owns=False) == set()


def test_storage_host_permissions_withhold_delete_upload_download():
    limited = acts(host_permissions={"create-vfolder"})
    assert not limited & {"delete", "upload", "download"} and "rename" in limited
    assert "upload" in acts(host_permissions={"upload-file"})


def test_project_folders_are_shared_by_admins():
    assert "share" in acts(ownership_type="project", caller_owns=False, caller_is_admin=True)
    assert "share" not in acts(ownership_type="project", caller_owns=False, permission="rw")
    assert "invite" not in acts(ownership_type="project", caller_owns=False, caller_is_admin=True)


def test_usage_modes_come_from_the_domain_and_names_say_which_field():
    assert rules.USAGE_MODES == tuple(FolderUsageMode)
    with pytest.raises(InvalidAPIParameters) as e:
        rules.check_folder_name("a/b")
    assert list(e.value.body()["field_errors"]) == ["name"]
