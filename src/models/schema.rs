// @generated automatically by Diesel CLI.

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        name -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_entries (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        actor_user_id -> Nullable<Int8>,
        actor_role -> Text,
        api_token_id -> Nullable<Int8>,
        action -> Text,
        object_type -> Text,
        object_id -> Text,
        partner_id -> Nullable<Int8>,
        catalog_id -> Nullable<Int8>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    bulk_job_rows (id) {
        id -> Int8,
        job_id -> Int8,
        line_number -> Int4,
        email -> Text,
        external_user_key -> Text,
        full_name -> Text,
        outcome -> Nullable<Text>,
        detail -> Nullable<Text>,
        processed_at -> Nullable<Timestamptz>,
        planned -> Nullable<Text>,
        outside_patterns -> Bool,
    }
}

diesel::table! {
    bulk_jobs (id) {
        id -> Int8,
        catalog_id -> Int8,
        submitted_by -> Nullable<Int8>,
        kind -> Text,
        status -> Text,
        source_name -> Text,
        total_rows -> Int4,
        processed_rows -> Int4,
        succeeded_rows -> Int4,
        failed_rows -> Int4,
        decided_by -> Nullable<Int8>,
        decided_at -> Nullable<Timestamptz>,
        decision_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        course_ids -> Array<Int8>,
        submitted_at -> Nullable<Timestamptz>,
        cancelled_by -> Nullable<Int8>,
        cancelled_at -> Nullable<Timestamptz>,
        lease_token -> Nullable<Uuid>,
        failures -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        planned_counts -> Jsonb,
        outcome_counts -> Jsonb,
        outside_patterns -> Int4,
    }
}

diesel::table! {
    catalog_courses (id) {
        id -> Int8,
        catalog_id -> Int8,
        course_id -> Int8,
        position -> Int4,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    catalog_email_patterns (id) {
        id -> Int8,
        catalog_id -> Int8,
        position -> Int4,
        pattern -> Text,
    }
}

diesel::table! {
    catalog_learners (id) {
        id -> Int8,
        catalog_id -> Int8,
        user_id -> Int8,
        invitation_id -> Int8,
        is_active -> Bool,
        joined_at -> Timestamptz,
        removed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    catalogs (id) {
        id -> Int8,
        partner_id -> Int8,
        slug -> Text,
        name -> Text,
        description -> Text,
        available_start -> Timestamptz,
        available_end -> Timestamptz,
        user_limit -> Int4,
        course_enrollments_limit -> Int4,
        is_self_enrollment -> Bool,
        allow_self_unenrollment -> Bool,
        support_email -> Text,
        authorization_message -> Text,
        alternative_link -> Text,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
        archived_by -> Nullable<Int8>,
    }
}

diesel::table! {
    courses (id) {
        id -> Int8,
        key -> Text,
        organisation_id -> Int8,
        title -> Text,
        starts_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
        modes -> Array<Text>,
        is_paid -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    external_identities (id) {
        id -> Int8,
        user_id -> Int8,
        provider -> Text,
        remote_id -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Int8,
        catalog_id -> Int8,
        email -> Text,
        user_id -> Nullable<Int8>,
        token_hash -> Bytea,
        channel -> Text,
        invited_at -> Timestamptz,
        invited_by -> Nullable<Int8>,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        declined_at -> Nullable<Timestamptz>,
        removed_at -> Nullable<Timestamptz>,
        removed_by -> Nullable<Int8>,
        removal_reason -> Nullable<Text>,
        send_count -> Int4,
        last_sent_at -> Nullable<Timestamptz>,
        reminder_sent_at -> Nullable<Timestamptz>,
        course_ids -> Array<Int8>,
        full_name -> Text,
        first_enrolment_at -> Nullable<Timestamptz>,
        given_paid_seat -> Bool,
    }
}

diesel::table! {
    licences (id) {
        id -> Int8,
        user_id -> Int8,
        course_id -> Int8,
        catalog_id -> Int8,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    organisations (id) {
        id -> Int8,
        short_name -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbound_emails (id) {
        id -> Int8,
        kind -> Text,
        to_address -> Text,
        from_name -> Text,
        reply_to -> Nullable<Text>,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        sealed_secret -> Nullable<Bytea>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
        partner_id -> Nullable<Int8>,
        invitation_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    partner_managers (user_id) {
        user_id -> Int8,
        partner_id -> Int8,
        assigned_by -> Nullable<Int8>,
        assigned_at -> Timestamptz,
        claimed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    partners (id) {
        id -> Int8,
        organisation_id -> Int8,
        code -> Text,
        name -> Text,
        homepage_url -> Text,
        logo_url -> Text,
        accent_colour -> Text,
        email_sender_name -> Text,
        support_email -> Text,
        time_zone -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    pending_enrollments (id) {
        id -> Int8,
        catalog_id -> Int8,
        email -> Nullable<Text>,
        external_provider -> Nullable<Text>,
        external_remote_id -> Nullable<Text>,
        course_ids -> Array<Int8>,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        fulfilled_at -> Nullable<Timestamptz>,
        fulfilled_user_id -> Nullable<Int8>,
        cancelled_at -> Nullable<Timestamptz>,
        last_attempt_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        bulk_job_id -> Nullable<Int8>,
        full_name -> Text,
    }
}

diesel::table! {
    platform_enrollments (id) {
        id -> Int8,
        user_id -> Int8,
        course_id -> Int8,
        mode -> Text,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refused_joins (id) {
        id -> Int8,
        catalog_id -> Int8,
        user_id -> Nullable<Int8>,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    shared_pool_courses (course_id) {
        course_id -> Int8,
        added_by -> Nullable<Int8>,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> Int8,
        email -> Text,
        client_ip -> Text,
        succeeded -> Bool,
        attempted_at -> Timestamptz,
    }
}

diesel::table! {
    tracking_events (id) {
        id -> Uuid,
        name -> Text,
        occurred_at -> Timestamptz,
        partner_id -> Nullable<Int8>,
        catalog_id -> Nullable<Int8>,
        course_id -> Nullable<Int8>,
        user_id -> Nullable<Int8>,
        invitation_id -> Nullable<Int8>,
        channel -> Nullable<Text>,
        reason -> Nullable<Text>,
        data -> Jsonb,
        forwarded_at -> Nullable<Timestamptz>,
        forward_attempts -> Int4,
        last_forward_error -> Nullable<Text>,
        forward_lease_until -> Nullable<Timestamptz>,
        last_forward_error_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    user_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        purpose -> Text,
        token_hash -> Bytea,
        new_email -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        full_name -> Text,
        password_hash -> Nullable<Text>,
        is_staff -> Bool,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_sign_in_at -> Nullable<Timestamptz>,
        session_generation -> Int4,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(audit_entries -> api_tokens (api_token_id));
diesel::joinable!(audit_entries -> catalogs (catalog_id));
diesel::joinable!(audit_entries -> partners (partner_id));
diesel::joinable!(audit_entries -> users (actor_user_id));
diesel::joinable!(bulk_job_rows -> bulk_jobs (job_id));
diesel::joinable!(bulk_jobs -> catalogs (catalog_id));
diesel::joinable!(catalog_courses -> catalogs (catalog_id));
diesel::joinable!(catalog_courses -> courses (course_id));
diesel::joinable!(catalog_email_patterns -> catalogs (catalog_id));
diesel::joinable!(catalog_learners -> catalogs (catalog_id));
diesel::joinable!(catalog_learners -> invitations (invitation_id));
diesel::joinable!(catalog_learners -> users (user_id));
diesel::joinable!(catalogs -> partners (partner_id));
diesel::joinable!(courses -> organisations (organisation_id));
diesel::joinable!(external_identities -> users (user_id));
diesel::joinable!(invitations -> catalogs (catalog_id));
diesel::joinable!(licences -> catalogs (catalog_id));
diesel::joinable!(licences -> courses (course_id));
diesel::joinable!(licences -> users (user_id));
diesel::joinable!(outbound_emails -> invitations (invitation_id));
diesel::joinable!(outbound_emails -> partners (partner_id));
diesel::joinable!(partner_managers -> partners (partner_id));
diesel::joinable!(partners -> organisations (organisation_id));
diesel::joinable!(pending_enrollments -> bulk_jobs (bulk_job_id));
diesel::joinable!(pending_enrollments -> catalogs (catalog_id));
diesel::joinable!(platform_enrollments -> courses (course_id));
diesel::joinable!(platform_enrollments -> users (user_id));
diesel::joinable!(refused_joins -> catalogs (catalog_id));
diesel::joinable!(refused_joins -> users (user_id));
diesel::joinable!(shared_pool_courses -> courses (course_id));
diesel::joinable!(shared_pool_courses -> users (added_by));
diesel::joinable!(tracking_events -> catalogs (catalog_id));
diesel::joinable!(tracking_events -> courses (course_id));
diesel::joinable!(tracking_events -> invitations (invitation_id));
diesel::joinable!(tracking_events -> partners (partner_id));
diesel::joinable!(tracking_events -> users (user_id));
diesel::joinable!(user_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    audit_entries,
    bulk_job_rows,
    bulk_jobs,
    catalog_courses,
    catalog_email_patterns,
    catalog_learners,
    catalogs,
    courses,
    external_identities,
    invitations,
    licences,
    organisations,
    outbound_emails,
    partner_managers,
    partners,
    pending_enrollments,
    platform_enrollments,
    refused_joins,
    shared_pool_courses,
    sign_in_attempts,
    tracking_events,
    user_tokens,
    users,
);
