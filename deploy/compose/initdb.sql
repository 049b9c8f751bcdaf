-- One database per service (deploy/services.conf), owned by the role the services log in as (POSTGRES_USER).
CREATE DATABASE profile OWNER ee;
CREATE DATABASE ranking OWNER ee;
CREATE DATABASE draws OWNER ee;
CREATE DATABASE applications OWNER ee;
CREATE DATABASE notifications OWNER ee;
