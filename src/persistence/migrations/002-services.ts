export const servicesMigration = {
  version: 2,
  name: 'services',
  sql: `
-- stock-service
CREATE TABLE magasins (
  id      serial PRIMARY KEY,
  nom     text NOT NULL UNIQUE,
  adresse text,
  ville   text
);
CREATE TABLE produits (
  id         serial PRIMARY KEY,
  nom        text   NOT NULL,
  categorie  text,
  prix_cents bigint NOT NULL CHECK (prix_cents > 0)
);
CREATE TABLE stock (
  magasin_id integer NOT NULL REFERENCES magasins (id),
  produit_id integer NOT NULL REFERENCES produits (id),
  quantite   integer NOT NULL CHECK (quantite >= 0),
  reservee   integer NOT NULL DEFAULT 0 CHECK (reservee >= 0),
  vendue     integer NOT NULL DEFAULT 0 CHECK (vendue >= 0),
  PRIMARY KEY (magasin_id, produit_id)
);
CREATE TABLE stock_reservations (
  commande_id text    NOT NULL,
  magasin_id  integer NOT NULL,
  produit_id  integer NOT NULL,
  quantite    integer NOT NULL CHECK (quantite > 0),
  statut      text    NOT NULL CHECK (statut IN ('reservee', 'liberee', 'vendue')),
  PRIMARY KEY (commande_id, produit_id)
);

-- client-service
CREATE TABLE clients (
  id          serial PRIMARY KEY,
  nom         text   NOT NULL,
  solde_cents bigint NOT NULL CHECK (solde_cents >= 0)
);
CREATE TABLE paiements (
  commande_id   text    PRIMARY KEY,
  client_id     integer NOT NULL,
  montant_cents bigint  NOT NULL,
  statut        text    NOT NULL CHECK (statut IN ('accepte', 'refuse', 'rembourse'))
);

-- panier-service
CREATE TABLE panier_articles (
  client_id  integer NOT NULL REFERENCES clients (id),
  produit_id integer NOT NULL REFERENCES produits (id),
  quantite   integer NOT NULL CHECK (quantite > 0),
  added_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, produit_id)
);
CREATE TABLE checkouts (
  client_id       integer NOT NULL,
  idempotency_key text    NOT NULL,
  commande_id     text    NOT NULL,
  PRIMARY KEY (client_id, idempotency_key)
);

-- ventes-service
CREATE TABLE ventes (
  id          serial PRIMARY KEY,
  commande_id text        NOT NULL UNIQUE,
  client_id   integer     NOT NULL,
  magasin_id  integer     NOT NULL,
  total_cents bigint      NOT NULL,
  date        timestamptz NOT NULL DEFAULT now()
);

-- commande saga actors: the persisted state of each order machine
CREATE TABLE sagas (
  commande_id text        PRIMARY KEY,
  statut      text        NOT NULL,
  raison      text,
  version     integer     NOT NULL,
  final       boolean     NOT NULL,
  started_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX sagas_not_final ON sagas (started_at) WHERE NOT final;

-- read model (CQRS): orders as the API shows them
CREATE TABLE commandes_vue (
  commande_id text        PRIMARY KEY,
  client_id   integer     NOT NULL,
  magasin_id  integer     NOT NULL,
  produits    jsonb       NOT NULL,
  total_cents bigint      NOT NULL,
  statut      text        NOT NULL,
  raison      text,
  historique  jsonb       NOT NULL,
  version     integer     NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX commandes_vue_client ON commandes_vue (client_id, created_at);
CREATE INDEX commandes_vue_statut ON commandes_vue (statut);
`,
};
