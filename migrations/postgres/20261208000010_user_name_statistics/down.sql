DROP STATISTICS users_user_name_md5;
