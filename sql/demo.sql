-- The demo schema `make up` loads into the dev cluster (idempotent).
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'web_anon') THEN
    CREATE ROLE web_anon NOLOGIN;
  END IF;
END $$;

CREATE TABLE IF NOT EXISTS books (
  id     int PRIMARY KEY,
  title  text NOT NULL,
  author text,
  year   int
);
INSERT INTO books VALUES
  (1, 'The Rust Programming Language', 'Klabnik & Nichols', 2018),
  (2, 'PostgreSQL: Up and Running', 'Obe & Hsu', 2017),
  (3, 'Designing Data-Intensive Applications', 'Kleppmann', 2017)
ON CONFLICT (id) DO NOTHING;

GRANT USAGE ON SCHEMA public TO web_anon;
GRANT SELECT ON books TO web_anon;

CREATE EXTENSION IF NOT EXISTS pg_rest;
