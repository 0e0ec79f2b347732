DROP TABLE platform_enrollments;
DROP TABLE shared_pool_courses;
DROP TABLE courses;
