-- Sandbox versus live: a sandbox client is served by the sandbox providers and the /sandbox
-- control routes (3-D Secure page, simulated bank transfers), and its webhook may point at a
-- private address; a live client is served by neither. Existing and new clients start in the sandbox.
ALTER TABLE clients ADD COLUMN mode text NOT NULL DEFAULT 'sandbox' CHECK (mode IN ('sandbox', 'live'));
