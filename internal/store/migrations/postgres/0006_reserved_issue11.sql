-- Placeholder: version 6 is reserved for another issue 11 branch.
-- Delete this file when that branch's 0006_*.sql is merged; two files with
-- one version make migrations.Load fail, so the duplicate cannot ship.
SELECT 1;
