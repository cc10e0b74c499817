async def test_root_and_whoami(manager):
    anon = manager.client()
    root = await anon.get("/")
    assert root["version"] == "v7.20230615"
    me = await manager.admin().get("/user/me")
    assert me["email"] == "admin@workbay.local" and me["role"] == "superadmin"
