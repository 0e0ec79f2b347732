DROP TABLE partner_managers;
DROP TABLE partners;
DROP TABLE organisations;
