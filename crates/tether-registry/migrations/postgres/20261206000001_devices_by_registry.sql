-- A registry's devices in numId order: the device list's keyset paging (WHERE
-- registry_pk = ? AND num_id > ? ORDER BY num_id LIMIT n) reads one page from this
-- index instead of sorting every device of the registry (the console pages through
-- 100,000 devices; docs/console.md has the figures).
CREATE INDEX devices_by_registry ON devices (registry_pk, num_id);
