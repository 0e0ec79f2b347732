DROP TABLE catalog_courses;
DROP TABLE catalog_email_patterns;
DROP TABLE catalogs;
