-- 1-Click (OAuth2 authorization code): a client's OAuth secret — only its SHA-256 is kept (the
-- secret is 256 random bits, shown once); a new one replaces the old.
CREATE TABLE oauth_client_secrets (
  client_id    text PRIMARY KEY REFERENCES clients (id),
  secret_hash  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
