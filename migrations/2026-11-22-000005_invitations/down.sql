DROP TABLE licences;
DROP TABLE catalog_learners;
DROP TABLE invitations;
