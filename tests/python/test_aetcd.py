"""The Python `aetcd` client against kvorum, unchanged: KV, transactions (compare-and-swap),
watch, leases (keys vanish on revoke), locks, status. Run by tests/tests/clients.rs with
KVORUM_HOST/KVORUM_PORT set; exits non-zero on the first failed check."""

import asyncio
import os

import aetcd


async def main() -> None:
    host = os.environ.get("KVORUM_HOST", "127.0.0.1")
    port = int(os.environ.get("KVORUM_PORT", "2379"))
    async with aetcd.Client(host=host, port=port) as client:
        # KV
        await client.put(b"py/greeting", b"hello")
        got = await client.get(b"py/greeting")
        assert got is not None and got.value == b"hello", got
        await client.put(b"py/other", b"x")
        listed = await client.get_prefix(b"py/")
        assert [kv.key for kv in listed] == [b"py/greeting", b"py/other"], list(listed)

        # Compare-and-swap: replace succeeds only from the expected value.
        assert await client.replace(b"py/greeting", b"hello", b"hi")
        assert not await client.replace(b"py/greeting", b"hello", b"never")
        got = await client.get(b"py/greeting")
        assert got.value == b"hi", got

        # Watch: a put made after the watch starts is delivered.
        watch = await client.watch(b"py/watched")
        events = []

        async def consume():
            async for event in watch:
                events.append(event)
                break

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        await client.put(b"py/watched", b"v1")
        await asyncio.wait_for(task, timeout=10)
        assert events and events[0].kv.value == b"v1", events
        await watch.cancel()

        # Leases: an attached key disappears when the lease is revoked.
        lease = await client.lease(30)
        await client.put(b"py/leased", b"tmp", lease=lease)
        info = await client.get_lease_info(lease.id)
        assert 0 < info.TTL <= 30, info
        await lease.refresh()
        await lease.revoke()
        assert await client.get(b"py/leased") is None

        # Locks: a second holder cannot acquire while the first holds it.
        first = client.lock(b"py-job", ttl=10)
        await first.acquire()
        assert await first.is_acquired()
        second = client.lock(b"py-job", ttl=10)
        try:
            await asyncio.wait_for(second.acquire(), timeout=1)
            raise AssertionError("the lock was acquired twice")
        except asyncio.TimeoutError:
            pass
        await first.release()
        await asyncio.wait_for(second.acquire(), timeout=10)
        await second.release()

        # Maintenance
        status = await client.status()
        assert status.leader is not None
        members = [m async for m in client.members()]
        assert len(members) == 3, members
    print("aetcd: all checks passed")


asyncio.run(main())
