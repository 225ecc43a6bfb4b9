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

-- Authors, tags and reviews, so embedding has something to show:
--   curl 'localhost:3000/books?select=title,authors(name),tags(name)'
CREATE TABLE IF NOT EXISTS authors (
  id   int PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO authors VALUES (1, 'Steve Klabnik'), (2, 'Regina Obe'), (3, 'Martin Kleppmann')
ON CONFLICT (id) DO NOTHING;
ALTER TABLE books ADD COLUMN IF NOT EXISTS author_id int REFERENCES authors;
UPDATE books SET author_id = id WHERE id <= 3 AND author_id IS NULL;
CREATE TABLE IF NOT EXISTS tags (
  id   int PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO tags VALUES (1, 'rust'), (2, 'databases'), (3, 'distributed systems')
ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS book_tags (
  book_id int REFERENCES books,
  tag_id  int REFERENCES tags,
  PRIMARY KEY (book_id, tag_id)
);
INSERT INTO book_tags VALUES (1, 1), (2, 2), (3, 2), (3, 3) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS reviews (
  id      int PRIMARY KEY,
  book_id int REFERENCES books,
  stars   int CHECK (stars BETWEEN 1 AND 5),
  body    text
);
INSERT INTO reviews VALUES (1, 1, 5, 'The book on Rust'), (2, 3, 5, 'A classic')
ON CONFLICT (id) DO NOTHING;
CREATE INDEX IF NOT EXISTS books_author_id ON books (author_id);
CREATE INDEX IF NOT EXISTS books_year ON books (year);
CREATE INDEX IF NOT EXISTS books_title ON books (title);
CREATE INDEX IF NOT EXISTS book_tags_tag_id ON book_tags (tag_id);

GRANT USAGE ON SCHEMA public TO web_anon;
GRANT SELECT ON books, authors, tags, book_tags, reviews TO web_anon;

CREATE EXTENSION IF NOT EXISTS pg_rest;
